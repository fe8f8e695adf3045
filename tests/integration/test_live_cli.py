"""``python -m app live`` end to end on a simulator folder (paper, --speed max, the API on a free
loopback port): its signals equal ``predict`` on the same bars, its fills equal
``backtest --signals`` of those signals on the same bars; no promoted model -> exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from app.config import load_settings
from app.live.replay import load_replay
from app.models.text_loader import cached_sentiment_model
from app.pipeline.predict import predict_inputs, predict_signals
from app.tuning.data_loading import load_data
from tests.unit.live.session_builders import save_promoted, tiny_model

SETTINGS = load_settings()


def _config(tmp: Path, registry: Path) -> Path:
    path = tmp / "settings.toml"
    path.write_text(f'registry_dir = "{registry}"\n')
    return path


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def make_sim(folder: Path, days: int = 3) -> Path:
    """A simulator folder of BTCUSDT and ETHUSDT (seed 3) through ``python -m app simulate``."""
    code = main(
        ["simulate", "--out", str(folder), "--days", str(days), "--seed", "3"]
        + ["--symbols", "BTCUSDT", "ETHUSDT"]
    )
    assert code == 0
    return folder


@pytest.fixture(scope="module")
def sim_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sim(tmp_path_factory.mktemp("sim") / "sim")


def promoted_config(tmp_path: Path, sim_folder: Path):  # type: ignore[no-untyped-def]
    """A tiny model of the folder's bars, promoted in a fresh registry; (model, settings TOML)."""
    data = load_data([sim_folder], None, None, news=False, news_impact=False, settings=SETTINGS)
    model = tiny_model(data.bars, sharp=1.0)  # temperature ~ the logits spread
    return model, _config(tmp_path, save_promoted(tmp_path / "registry", model))


def check_live_equals_predict_and_backtest(  # type: ignore[no-untyped-def]
    tmp_path: Path, sim_folder: Path, model, config: Path, out: Path, summary: dict, capsys
) -> None:
    """``live``'s --out files against ``predict`` (1e-6) and ``backtest --signals`` (exact)."""
    data = load_data([sim_folder], None, None, news=False, news_impact=False, settings=SETTINGS)
    assert summary["stopped"] == "end_of_replay" and summary["errors"] == []
    assert summary["bars"] == sum(len(f) for f in data.bars.values())
    assert summary["fills"] > 20 and summary["orders"] >= summary["fills"] // 2

    got = pd.read_csv(out / "signals.csv")
    assert list(got.columns) == [
        "ts", "ticker", "signal", "confidence", "p_up", "p_down", "p_flat", "model_version",
    ]  # fmt: skip
    replayed = load_replay(sim_folder)
    text = cached_sentiment_model(SETTINGS.sentiment, tmp_path / "registry")
    inputs = predict_inputs(replayed, data.asset_class, text)  # headlines scored, as live
    want = predict_signals(model.bundle, inputs, model_version=model.version).signals
    assert len(got) == len(want) == summary["signals"]
    assert got["ticker"].tolist() == want["ticker"].tolist()
    assert pd.to_datetime(got["ts"], utc=True).tolist() == want["ts"].tolist()
    for col in ("p_up", "p_down", "p_flat"):
        np.testing.assert_allclose(got[col], want[col], atol=1e-6)

    bt = tmp_path / "bt"
    args = ["backtest", "--prices", str(sim_folder), "--signals", str(out / "signals.csv")]
    assert main([*args, "--config", str(config), "--out", str(bt)]) == 0
    capsys.readouterr()
    live_fills = pd.read_csv(out / "fills.csv")
    bt_fills = pd.read_csv(bt / "fills.csv")
    assert list(live_fills.columns) == list(bt_fills.columns)
    assert len(live_fills) == len(bt_fills) == summary["fills"]
    for col in ("ts", "ticker", "side", "price", "qty", "fee"):
        assert live_fills[col].tolist() == bt_fills[col].tolist(), col
    live_eq = pd.read_csv(out / "equity.csv")
    bt_eq = pd.read_csv(bt / "equity.csv")
    assert list(live_eq.columns) == list(bt_eq.columns)
    np.testing.assert_allclose(live_eq["equity"], bt_eq["equity"], atol=1e-6)
    decisions = pd.read_csv(out / "decisions.csv")
    assert list(decisions.columns) == ["ts", "ticker", "action", "qty", "reasons"]
    assert summary["decisions"] == len(decisions) >= summary["signals"]


def test_live_replay_equals_predict_and_backtest(tmp_path, sim_folder, capsys) -> None:
    model, config = promoted_config(tmp_path, sim_folder)
    out = tmp_path / "live"
    argv = ["live", "--config", str(config), "--replay", str(sim_folder), "--speed", "max"]
    assert main([*argv, "--port", "0", "--no-panel", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "signal API: http://127.0.0.1:" in printed
    check_live_equals_predict_and_backtest(
        tmp_path, sim_folder, model, config, out, _last_json(printed), capsys
    )


def test_no_promoted_model_exits_2_with_one_line(tmp_path, sim_folder, capsys) -> None:
    config = _config(tmp_path, tmp_path / "empty-registry")
    code = main(["live", "--config", str(config), "--replay", str(sim_folder), "--out", "x"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no promoted model" in err[0]


def test_a_real_venue_needs_live(tmp_path, sim_folder, capsys) -> None:
    data = load_data([sim_folder], None, None, news=False, news_impact=False, settings=SETTINGS)
    config = _config(tmp_path, save_promoted(tmp_path / "registry", tiny_model(data.bars)))
    code = main(["live", "--config", str(config), "--venue", "binance", "--out", str(tmp_path)])
    assert code == 2 and "add --live" in capsys.readouterr().err
