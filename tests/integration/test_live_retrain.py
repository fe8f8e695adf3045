"""``python -m app live --retrain-every 2d`` end to end on a 3-day simulator replay (paper,
``--speed max``, in-process): one retrain at the close of day 2 on the store's bars, both
figures in the summary and in the registry, the candidate promoted because the served model is
deliberately poor (it bets against a logistic regression of these very prices), signals.csv on
the served version before the retrain's time and on the new one from the next bar on, each
segment equal to ``predict`` of its version (1e-6), the fills equal to ``backtest --signals``.
The no-promotion outcome (the served version stays) runs on the Ray path:
tests/integration/test_live_serve.py."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from app.cli.main import main
from app.config import load_settings
from app.features.batch import build_features
from app.features.spec import default_spec
from app.labels import DOWN, UP
from app.live.model import SignalModel
from app.live.replay import load_replay
from app.models.bundle import ModelBundle
from app.models.dataset import FeatureScaler
from app.models.factory import build_model, model_config_for
from app.models.registry import list_versions, load_version, promoted_version, version_dir
from app.pipeline.predict import predict_inputs, predict_signals
from app.text.sentiment import SentimentModel
from app.tuning.data_loading import load_data
from app.types import BAR_INTERVAL, AssetClass
from tests.integration.test_live_cli import _last_json, make_sim
from tests.unit.live.session_builders import LOOKBACK, SYMBOLS, save_promoted

SETTINGS = load_settings()
# a small walk-forward (~3 s on 2 cores): the quick preset, 2 folds, one epoch
RETRAIN_TOML = """
[retrain]
quick = true
folds = 2
max_epochs = 1
max_windows = 400
baselines = ["majority"]
"""


def contrarian_model(
    bars: dict[str, pd.DataFrame], version: str = "lstm-contrarian"
) -> SignalModel:
    """A deliberately poor served model: a logistic regression of "next close up" on these
    bars' features, its call reversed (the UP and DOWN rows swapped) on the LSTM's linear
    last-bar path (the recurrent head is zero), sharpened so some calls pass the risk gate."""
    from sklearn.linear_model import LogisticRegression

    spec = default_spec(AssetClass.CRYPTO)
    names = list(spec.feature_names)
    xs, ys = [], []
    for frame in bars.values():
        rows = build_features(frame, asset_class=AssetClass.CRYPTO, spec=spec)[names].to_numpy()
        ok = np.isfinite(rows).all(axis=1)
        ok[-1] = False  # no next close
        xs.append(rows[ok])
        ys.append((frame["close"].shift(-1) > frame["close"]).to_numpy()[ok])
    x, y = np.concatenate(xs), np.concatenate(ys)
    scaler = FeatureScaler.fit(x)
    z = scaler.transform(x)
    fit = LogisticRegression(C=0.1, max_iter=500).fit(z, y)
    w = torch.tensor(fit.coef_[0], dtype=torch.float32)
    config = model_config_for(
        "lstm", n_features=len(names), lookback=LOOKBACK, d_model=8, n_layers=1, skip=True
    )
    model = build_model("lstm", config)
    with torch.no_grad():
        model.skip.weight.zero_()
        model.skip.bias.zero_()
        model.skip.weight[UP] = -w  # up when the regression says down, and the reverse
        model.skip.weight[DOWN] = w
    spread = float(np.std(z @ fit.coef_[0]))
    bundle = ModelBundle(
        kind="lstm",
        model_config=config,
        model=model,
        scaler=scaler,
        temperature=spread / 2.0,  # |logit gap| ~ 4 at one sd: the confident calls trade
        lookback=LOOKBACK,
        feature_names=tuple(names),
        symbols=SYMBOLS,
        label_settings={"horizon": 1},
        feature_spec=spec.to_dict(),
    )
    return SignalModel(version, bundle)


def test_retrain_every_promotes_a_better_candidate_from_the_next_bar(
    tmp_path: Path, capsys
) -> None:
    sim = make_sim(tmp_path / "sim")  # 3 days, 864 bars per ticker
    data = load_data([sim], None, None, news=False, news_impact=False, settings=SETTINGS)
    served = contrarian_model(data.bars)
    registry = save_promoted(tmp_path / "registry", served)
    config = tmp_path / "settings.toml"
    config.write_text(f'registry_dir = "{registry}"\n{RETRAIN_TOML}')
    out = tmp_path / "live"
    argv = ["live", "--config", str(config), "--replay", str(sim), "--speed", "max"]
    argv += ["--retrain-every", "2d", "--port", "0", "--no-panel", "--out", str(out)]
    assert main(argv) == 0
    summary = _last_json(capsys.readouterr().out)
    assert summary["stopped"] == "end_of_replay" and summary["errors"] == []
    assert summary["bars"] == sum(len(f) for f in data.bars.values())

    # one retrain, at the close of the bar two days after the first bar's close
    retrain = summary["retrain"]
    assert retrain["errors"] == [] and not retrain["running"]
    (run,) = retrain["runs"]
    first = min(f["ts"].iloc[0] for f in data.bars.values())
    at = pd.Timestamp(run["at"])
    assert at == first + BAR_INTERVAL + timedelta(days=2)
    assert run["serving"] == served.version and run["metric"] == "dacc"
    assert run["candidate_score"] > run["serving_score"] + 0.05, run["reason"]
    assert run["promoted"] and run["better"] and "beats serving" in run["reason"]
    new = run["candidate"]
    assert summary["model_version"] == new and promoted_version(registry) == new

    # both figures in the candidate's registry entry; trained on the store's bars up to `at`
    entry = {v.version: v for v in list_versions(registry)}[new]
    rec = entry.metrics["retrain"]
    assert rec["candidate"] == run["candidate_score"] and rec["serving"] == run["serving_score"]
    assert rec["serving_version"] == served.version and rec["better"] is True
    trained = json.loads((version_dir(registry, new) / "data.json").read_text())
    assert trained["source"] == f"store:duckdb:///{out / 'journal.db'}"
    assert pd.Timestamp(trained["test"][1]) < at  # its last test label: the close at `at`
    report = json.loads((out / "retrain" / "retrain-001" / "report.json").read_text())
    assert report["data"]["bars"] == dict.fromkeys(SYMBOLS, 577)  # the pending ones written

    # signals: the served version before the retrain's time, the new one from the next bar on
    got = pd.read_csv(out / "signals.csv")
    ts = pd.to_datetime(got["ts"], utc=True)
    later = (ts >= at).to_numpy()
    assert later.sum() > 200 and (~later).sum() > 400
    assert set(got["model_version"][~later]) == {served.version}
    assert set(got["model_version"][later]) == {new}

    # each segment equals `predict` of its version on the same bars
    replayed = load_replay(sim)
    inputs = predict_inputs(replayed, data.asset_class, _text_model(tmp_path))
    for version, bundle, rows in (
        (served.version, served.bundle, ~later),
        (new, load_version(registry, new), later),
    ):
        want = predict_signals(bundle, inputs, model_version=version).signals
        want = want[want["ts"].isin(ts[rows])].reset_index(drop=True)
        seg = got[rows].reset_index(drop=True)
        assert len(seg) == len(want) and seg["ticker"].tolist() == want["ticker"].tolist()
        for col in ("p_up", "p_down", "p_flat"):
            np.testing.assert_allclose(seg[col], want[col], atol=1e-6)

    # the fills across the swap equal `backtest --signals` of those signals
    bt = tmp_path / "bt"
    args = ["backtest", "--prices", str(sim), "--signals", str(out / "signals.csv")]
    assert main([*args, "--config", str(config), "--out", str(bt)]) == 0
    capsys.readouterr()
    live_fills, bt_fills = pd.read_csv(out / "fills.csv"), pd.read_csv(bt / "fills.csv")
    assert len(live_fills) == len(bt_fills) == summary["fills"] > 0
    for col in ("ts", "ticker", "side", "price", "qty", "fee"):
        assert live_fills[col].tolist() == bt_fills[col].tolist(), col


def _text_model(registry: Path) -> SentimentModel:
    """The headline scorer the live feed used (the sim has news)."""
    from app.models.text_loader import cached_sentiment_model

    return cached_sentiment_model(SETTINGS.sentiment, registry / "registry")
