"""Replay sources: time order across tickers, side items at publication, rejects counted,
pacing at --speed, and the predict CLI on a CSV folder."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from app.cli.main import main
from app.errors import InputError
from app.live.replay import Replay, load_replay, parse_speed
from app.models.registry import save_version
from app.types import BAR_INTERVAL, Bar, to_ns
from tests.unit.live.live_builders import sim_folder, small_spec, tiny_bundle


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return sim_folder(tmp_path_factory.mktemp("sim"), days=1)


def test_items_come_in_the_order_they_become_known(sim):
    data = load_replay(sim)
    assert set(data.classes) == {"crypto", "stocks"} and data.symbols("stocks") == ("AAPL",)
    items = list(Replay(data, "crypto").items())
    known = [to_ns(i.close_time if isinstance(i, Bar) else i.published_at) for i in items]
    assert known == sorted(known)
    bars = [i for i in items if isinstance(i, Bar)]
    assert len(bars) == 2 * 288 and {b.symbol for b in bars} == {"BTCUSDT", "ETHUSDT"}
    assert len(items) - len(bars) == len(Replay(data, "crypto").side_items) > 0


def test_bad_csv_rows_are_rejected_and_counted(sim, tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    shutil.copy(sim / "BTCUSDT_5m.csv", folder)
    lines = (folder / "BTCUSDT_5m.csv").read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ",-1,1,1,1,1"  # a negative open
    lines.insert(9, lines[8])  # a duplicate
    (folder / "BTCUSDT_5m.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="asset-class"):
        load_replay(folder)
    data = load_replay(folder, "crypto")
    assert data.rejected == {"BTCUSDT": {"nonpositive": 1, "duplicate": 1}}
    assert len(data.bars["BTCUSDT"]) == 287


def test_speed_paces_bar_steps_per_ticker(sim):
    clock = {"t": 0.0}
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock["t"] += s

    closes = []
    replay = Replay(load_replay(sim, "crypto"), "crypto", speed=4.0, sleep=sleep,
                    monotonic=lambda: clock["t"], on_close=closes.append)  # fmt: skip
    bars = [i for i in replay.items() if isinstance(i, Bar)]
    assert len(closes) == len(bars) // 2  # one step per bar time, not per ticker
    assert clock["t"] == pytest.approx(len(closes) / 4.0)
    assert closes[0] == bars[0].ts + BAR_INTERVAL
    assert parse_speed("max") is None and parse_speed("2.5") == 2.5
    with pytest.raises(InputError):
        parse_speed("0")


def test_predict_cli_writes_the_signals_backtest_reads(sim, tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for s in ("BTCUSDT", "ETHUSDT"):
        shutil.copy(sim / f"{s}_5m.csv", folder)
    registry = tmp_path / "registry"
    version = save_version(registry, tiny_bundle(small_spec()), version="lstm-test-1")
    out = tmp_path / "signals.csv"
    code = main(["predict", "--version", version, "--data", str(folder), "--asset-class",
                 "crypto", "--out", str(out), "--registry", str(registry)])  # fmt: skip
    assert code == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["ts", "ticker", "signal", "confidence", "p_up", "p_down",
                                   "p_flat", "model_version"]  # fmt: skip
    assert (
        set(frame["ticker"]) == {"BTCUSDT", "ETHUSDT"} and (frame["model_version"] == version).all()
    )
    assert frame["ts"].str.endswith("Z").all()
    assert ((frame[["p_up", "p_down", "p_flat"]].sum(axis=1) - 1).abs() < 1e-6).all()
    from app.backtest.signals_io import check_signals
    from app.sources.backtest_files import load_price_files, price_files_in, read_signals_csv

    prices, _ = load_price_files(price_files_in(folder))
    batch = check_signals(read_signals_csv(out), prices)
    assert batch.accepted == len(frame) and not any(batch.rejected.values())
