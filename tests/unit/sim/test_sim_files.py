"""Simulation folder format and the ``simulate`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from app.cli.main import main
from app.errors import InputError
from app.sim.config import SimConfig
from app.sim.files import load_simulation, write_simulation
from app.sim.market import SimulatedMarket
from app.sim.result import SimulationResult


@pytest.fixture(scope="module")
def small() -> SimulationResult:
    return SimulatedMarket(SimConfig(seed=5, days=4)).run()


def test_round_trip_is_exact(small: SimulationResult, tmp_path: Path) -> None:
    back = load_simulation(write_simulation(small, tmp_path / "sim"))
    assert back.asset_classes == small.asset_classes
    for sym in small.bars:
        pd.testing.assert_frame_equal(back.bars[sym], small.bars[sym], check_exact=True)
        pd.testing.assert_frame_equal(back.oracle[sym], small.oracle[sym], check_exact=True)
    assert back.news == small.news
    assert back.macro == small.macro
    assert back.flow == small.flow
    assert back.manifest == small.manifest
    assert back.oracle_dacc("BTCUSDT") == small.oracle_dacc("BTCUSDT")


def test_files_follow_the_pinned_format(small: SimulationResult, tmp_path: Path) -> None:
    out = write_simulation(small, tmp_path / "sim")
    names = sorted(p.name for p in out.iterdir())
    expected = ["manifest.json", "news.csv", "macro.csv", "flow.csv"]
    for sym in ("BTCUSDT", "ETHUSDT", "AAPL", "EURUSD"):
        expected += [f"{sym}_5m.csv", f"{sym}_oracle.csv"]
    assert names == sorted(expected)
    lines = (out / "BTCUSDT_5m.csv").read_text().splitlines()
    assert lines[0] == "ts,open,high,low,close,volume"
    assert lines[1].startswith("2025-01-06T00:00:00Z,")
    assert (
        (out / "BTCUSDT_oracle.csv")
        .read_text()
        .startswith("ts,mu,sigma,theta,p_up,p_down,p_flat\n")
    )
    header = (out / "news.csv").read_text().splitlines()[0]
    assert header == "id,published_at,source,title,body,symbols,topic,true_sentiment"
    assert (out / "macro.csv").read_text().startswith("name,ts,published_at,value\n")
    assert (out / "flow.csv").read_text().startswith("symbol,kind,ts,published_at,value\n")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["symbols"] == {
        "BTCUSDT": "crypto",
        "ETHUSDT": "crypto",
        "AAPL": "stocks",
        "EURUSD": "forex",
    }
    assert {"seed", "days", "horizon", "labels", "planted_effects", "oracle"} <= set(manifest)
    assert manifest["planted_effects"]["news_weight"] > 0


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    cfg = SimConfig(seed=9, days=2)
    a = write_simulation(SimulatedMarket(cfg).run(), tmp_path / "a")
    b = write_simulation(SimulatedMarket(cfg).run(), tmp_path / "b")
    for f in sorted(a.iterdir()):
        assert f.read_bytes() == (b / f.name).read_bytes(), f.name


def test_load_names_what_is_wrong(small: SimulationResult, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        load_simulation(tmp_path)
    out = write_simulation(small, tmp_path / "sim")
    (out / "AAPL_5m.csv").write_text("ts,open,high\n2025-01-06T14:30:00Z,1,2\n")
    with pytest.raises(InputError, match="AAPL_5m.csv.*missing column"):
        load_simulation(out)


def test_simulate_command_prints_a_json_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    code = main(
        [
            "simulate",
            "--out",
            str(out),
            "--days",
            "3",
            "--seed",
            "1",
            "--symbols",
            "BTCUSDT",
            "AAPL",
            "EURUSD",
            "--asset-class",
            "crypto",
            "stocks",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["bars"] == {"BTCUSDT": 864, "AAPL": 234}
    assert summary["news"] > 0 and summary["macro"] == 8 and summary["flow"] > 0
    assert set(summary["oracle_dacc"]) == {"BTCUSDT", "AAPL"}
    loaded = load_simulation(out)
    assert set(loaded.bars) == {"BTCUSDT", "AAPL"}
    assert len(loaded.news) == summary["news"]


def test_simulate_command_rejects_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--out", str(tmp_path), "--symbols", "DOGEUSDT"]) == 2
    assert "DOGEUSDT" in capsys.readouterr().err
    assert main(["simulate", "--out", str(tmp_path), "--days", "0"]) == 2
    assert "--days=0" in capsys.readouterr().err
    code = main(["simulate", "--out", str(tmp_path), "--symbols", "AAPL", "--asset-class", "forex"])
    assert code == 2
    assert "--asset-class" in capsys.readouterr().err
