"""Builders for the live-loop tests: simulator bars, a real (small, untrained) registry model
whose windows come from the real feature spec, and a paper session on a DuckDB journal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from app.broker.execution import ExecutionEngine
from app.broker.paper import PaperBroker
from app.clock import ReplayClock
from app.config import CostSettings, RiskSettings
from app.features.batch import build_features
from app.features.spec import default_spec
from app.live.model import SignalModel
from app.live.session import TradingSession
from app.models.bundle import ModelBundle
from app.models.dataset import FeatureScaler
from app.models.factory import build_model, model_config_for
from app.models.registry import promote, save_version
from app.risk.engine import RiskEngine
from app.sim.config import SimConfig
from app.sim.market import SimulatedMarket
from app.store import DuckDBStore
from app.types import AssetClass

SYMBOLS = ("BTCUSDT", "ETHUSDT")
LOOKBACK = 6


def sim_bars(days: int = 3, seed: int = 3) -> tuple[dict[str, pd.DataFrame], dict[str, AssetClass]]:
    sim = SimulatedMarket(SimConfig.for_symbols(list(SYMBOLS), days=days, seed=seed)).run()
    bars = {s: sim.bars[s][["ts", "open", "high", "low", "close", "volume"]] for s in SYMBOLS}
    return bars, {s: AssetClass(sim.asset_classes[s]) for s in SYMBOLS}


def tiny_model(
    bars: dict[str, pd.DataFrame],
    version: str = "lstm-test-1",
    seed: int = 0,
    sharp: float = 2.0,
    *,
    asset_class: AssetClass = AssetClass.CRYPTO,
    symbols: tuple[str, ...] = SYMBOLS,
) -> SignalModel:
    """An untrained LSTM over the crypto spec's columns, its scaler fitted on ``bars``; its
    logits centred (``logit_bias``) and sharpened (``temperature``) on these bars, so its
    input-dependent calls vary between classes and some pass the risk gate: the run trades.
    No skip path: an untrained one starts at zero (constant logits, every call a HOLD).
    ``asset_class`` picks the feature spec (stocks, forex for the IB feed's tests)."""
    spec = default_spec(asset_class)
    names = spec.feature_names
    rows = np.concatenate(
        [
            build_features(f, asset_class=asset_class, spec=spec)[list(names)].to_numpy()
            for f in bars.values()
        ]
    )
    rows = rows[np.isfinite(rows).all(axis=1)]
    config = model_config_for(
        "lstm", n_features=len(names), lookback=LOOKBACK, d_model=8, n_layers=1, skip=False
    )
    import torch

    torch.manual_seed(seed)
    bundle = ModelBundle(
        kind="lstm",
        model_config=config,
        model=build_model("lstm", config),
        scaler=FeatureScaler.fit(rows),
        temperature=1.0,
        lookback=LOOKBACK,
        feature_names=tuple(names),
        symbols=symbols,
        label_settings={"horizon": 1},
        feature_spec=spec.to_dict(),
    )
    from app.live.series import SeriesReplay

    classes = dict.fromkeys(bars, asset_class)
    replay = SeriesReplay(bars, classes, SignalModel(version, bundle))
    windows = (replay.window(s, j) for s, f in bars.items() for j in range(len(f)))
    x = np.stack([w for w in windows if w is not None])
    logits = bundle.logits(x)
    bundle.logit_bias = tuple(float(b) for b in -logits.mean(axis=0))
    bundle.temperature = float((logits - logits.mean(axis=0)).std() / sharp)
    return SignalModel(version, bundle)


def save_promoted(root: Path, model: SignalModel) -> Path:
    save_version(root, model.bundle, version=model.version)
    promote(root, model.version)
    return root


def paper_session(
    tmp_path: Path,
    model: SignalModel,
    classes: dict[str, AssetClass],
    clock: ReplayClock,
    *,
    equity: float = 100_000.0,
    risk: RiskSettings | None = None,
    costs: CostSettings | None = None,
    journal_log: bool = False,
    **kw: object,
) -> tuple[TradingSession, DuckDBStore]:
    risk_engine = RiskEngine(risk or RiskSettings())
    broker = PaperBroker(classes, costs, initial_cash=equity, state_path=tmp_path / "paper.json")
    store = DuckDBStore(tmp_path / "journal.db")
    execution = ExecutionEngine(
        broker, risk_engine, store, calendar=AssetClass.CRYPTO, initial_cash=equity,
        symbols=tuple(classes), clock=clock.now,
        journal_log=tmp_path / "journal.log" if journal_log else None,  # as the worker has it
    )  # fmt: skip
    session = TradingSession(
        model=model,
        risk=risk_engine,
        execution=execution,
        asset_classes=classes,
        calendar=AssetClass.CRYPTO,
        clock=clock,
        fill_book=broker.pf,
        **kw,  # type: ignore[arg-type]
    )
    return session, store
