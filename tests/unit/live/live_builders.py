"""Builders for the live tests: a small simulator folder, a tiny real bundle, a feed on DuckDB."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.features.spec import FeatureSpec, default_spec
from app.live.checkpoint import CheckpointDir
from app.live.feed import FeedWorker
from app.live.headlines import HeadlineScorer
from app.live.replay import ReplayData, load_replay
from app.live.window_spec import WindowSpec
from app.models.bundle import ModelBundle
from app.models.dataset import FeatureScaler
from app.models.factory import build_model, model_config_for
from app.sim.config import SimConfig
from app.sim.files import write_simulation
from app.sim.market import SimulatedMarket
from app.store import open_store
from app.text.impact import IMPACT_COLUMNS
from app.text.sentiment import SentimentModel

SYMBOLS = ("BTCUSDT", "ETHUSDT", "AAPL")
LOOKBACK = 6


def sim_folder(root: Path, days: int = 2, seed: int = 3) -> Path:
    """A seeded simulator folder (crypto BTCUSDT, ETHUSDT and stocks AAPL)."""
    result = SimulatedMarket(SimConfig.for_symbols(list(SYMBOLS), days=days, seed=seed)).run()
    return write_simulation(result, root / "sim")


def small_spec(asset_class: str = "crypto") -> FeatureSpec:
    """The default spec with a short EMA set, so windows are ready after ~50 bars."""
    base = default_spec(asset_class).to_dict()
    base["ema_periods"] = [9, 20, 50]
    return FeatureSpec.from_dict(base)


def tiny_bundle(
    spec: FeatureSpec, *, impact_dim: int | None = None, seed: int = 0, n_tickers: int = 0
) -> ModelBundle:
    """A real (untrained, seeded) LSTM over ``spec``'s columns; with ``impact_dim``, a fitted
    random news-impact ridge of that embedding size and its two columns."""
    import torch

    names = spec.feature_names + (IMPACT_COLUMNS if impact_dim else ())
    feature_spec = spec.to_dict()
    if impact_dim:
        rng = np.random.default_rng(seed)
        feature_spec["news_impact"] = {
            "fitted": True, "coef": rng.normal(0, 0.5, impact_dim).tolist(), "intercept": 0.1,
            "alpha": 1.0, "n_train": 100, "horizon_bars": 6, "half_lives_min": [15, 60],
        }  # fmt: skip
    config = model_config_for(
        "lstm", n_features=len(names), lookback=LOOKBACK, d_model=8, n_layers=1,
        n_tickers=n_tickers, skip=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    scale = np.ones(len(names))
    scale[[i for i, n in enumerate(names) if n.startswith(("atr_", "macd"))]] = 50.0
    return ModelBundle(
        kind="lstm",
        model_config=config,
        model=build_model("lstm", config),
        scaler=FeatureScaler(np.zeros(len(names)), scale),
        temperature=0.5,
        lookback=LOOKBACK,
        feature_names=names,
        symbols=("BTCUSDT", "ETHUSDT"),
        label_settings={"horizon": 1},
        feature_spec=feature_spec,
    )


def crypto_worker(
    tmp: Path,
    data: ReplayData,
    window: WindowSpec,
    model: SentimentModel | None,
    *,
    store_name: str = "store.db",
    checkpoint_every: int = 50,
    store_every: int = 16,
) -> FeedWorker:
    store = open_store(f"duckdb:///{tmp / store_name}")
    scorer = None
    if model is not None:
        scorer = HeadlineScorer(model, data.assets, window.impact_model)
    return FeedWorker(
        "crypto",
        data.symbols("crypto"),
        window,
        store,
        scorer=scorer,
        checkpoints=CheckpointDir(tmp / f"ckpt-{store_name}", "crypto"),
        checkpoint_every=checkpoint_every,
        store_every=store_every,
        keep_rows=True,
    )


def replay_data(folder: Path) -> ReplayData:
    return load_replay(folder, "crypto")
