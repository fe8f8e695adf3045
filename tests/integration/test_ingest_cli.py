"""``python -m app ingest`` beyond plain CSV: simulator folders, 1-minute files, layouts,
IB refusal, argument errors. Real DuckDB files throughout."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from app.sim.config import SimConfig
from app.sim.files import write_simulation
from app.sim.market import SimulatedMarket
from app.store import open_store


def _ingest(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["ingest", *argv])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if lines else {"stderr": captured.err})


def _read_bars(url: str, symbol: str) -> pd.DataFrame:
    store = open_store(url)
    try:
        return store.read_bars(symbol)
    finally:
        store.close()


def test_sim_folder_and_generated_market_ingest_the_same_bars(tmp_path: Path, capsys) -> None:
    result = SimulatedMarket(SimConfig(seed=3, days=2)).run()
    folder = write_simulation(result, tmp_path / "sim")
    from_folder = f"duckdb:///{tmp_path / 'a.db'}"
    code, summary = _ingest(
        capsys, "--source", "sim", "--path", str(folder), "--store", from_folder
    )
    assert code == 0
    expected = {s: len(f) for s, f in result.bars.items()}
    assert summary["rows_written"] == sum(expected.values()) and summary["rows_rejected"] == 0
    generated = f"duckdb:///{tmp_path / 'b.db'}"
    code, again = _ingest(
        capsys,
        "--source",
        "sim",
        "--days",
        "2",
        "--seed",
        "3",
        "--symbol",
        "BTCUSDT",
        "--store",
        generated,
    )
    assert code == 0 and again["symbols"] == ["BTCUSDT"]
    assert again["rows_written"] == expected["BTCUSDT"]
    pd.testing.assert_frame_equal(
        _read_bars(from_folder, "BTCUSDT"), _read_bars(generated, "BTCUSDT")
    )


def _one_minute_csv(path: Path, start: str, n: int) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="1min", tz="UTC")
    close = 100.0 + np.arange(n)
    frame = pd.DataFrame(
        {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": close - 0.5,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 1.0,
        }
    )
    frame.to_csv(path, index=False)
    return frame


def test_one_minute_folder_is_resampled_to_five(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "m1"
    folder.mkdir()
    _one_minute_csv(folder / "BTCUSDT_1m.csv", "2022-06-15T03:00:00Z", 23)  # 4 full bins + 3 min
    url = f"duckdb:///{tmp_path / 's.db'}"
    code, summary = _ingest(
        capsys, "--path", str(folder), "--resample-1m", "--store", url, "--asset-class", "crypto"
    )
    assert code == 0
    assert summary["rows_read"] == 23 and summary["rows_written"] == 4
    assert summary["incomplete_bins_dropped"] == 1 and summary["asset_class"] == "crypto"
    bars = _read_bars(url, "BTCUSDT")
    assert bars["ts"].dt.minute.tolist() == [0, 5, 10, 15]
    assert bars[["open", "high", "low", "close", "volume"]].iloc[1].tolist() == [
        104.5,
        110.0,
        104.0,
        109.0,
        5.0,
    ]


def test_column_mapping_and_naive_utc_declaration(tmp_path: Path, capsys) -> None:
    path = tmp_path / "eurusd_export.csv"
    path.write_text(
        "time,o,h,l,c,tick_volume\n"
        "2026.03.26 14:00,1.15424,1.15443,1.15391,1.15406,761\n"
        "2026.03.26 14:05,1.15406,1.15434,1.15368,1.15412,595\n"
    )
    url = f"duckdb:///{tmp_path / 's.db'}"
    argv = (
        "--path",
        str(path),
        "--symbol",
        "EURUSD",
        "--store",
        url,
        "--columns",
        "time=ts,o=open,h=high,l=low,c=close,tick_volume=volume",
        "--ts-format",
        "%Y.%m.%d %H:%M",
    )
    code, refused = _ingest(capsys, *argv, "--rejects", str(tmp_path / "rejects.csv"))
    assert code == 0 and refused["rejected_by_reason"] == {"bad_timestamp": 2}
    assert "no UTC offset" in pd.read_csv(tmp_path / "rejects.csv")["detail"].iloc[0]
    code, accepted = _ingest(capsys, *argv, "--assume-utc")
    assert code == 0 and accepted["rows_written"] == 2
    assert _read_bars(url, "EURUSD")["ts"].iloc[1] == pd.Timestamp("2026-03-26T14:05:00Z")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--path", "SPY_5m.csv", "--columns", "Datetime"], "--columns 'Datetime': expected"),
        (["--path", "no/such/dir"], "no/such/dir: no such file or folder"),
        (["--source", "sim", "--days", "0"], "--days=0"),
        (["--source", "ccxt"], "--source ccxt needs --symbol"),
        (["--source", "ib", "--symbol", "BTCUSDT", "--asset-class", "crypto"], "use the ccxt"),
        (
            ["--source", "yfinance", "--symbol", "SPY", "--since", "2020-01-01T00:00:00Z"],
            "last 60 days only",
        ),
        (["--source", "ccxt", "--symbol", "BTC/USDT", "--since", "2025-01-01"], "add a UTC offset"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys
) -> None:
    (tmp_path / "SPY_5m.csv").write_text("Datetime,Open,High,Low,Close,Volume\n")
    argv = [str(tmp_path / a) if a == "SPY_5m.csv" else a for a in argv]
    code = main(["ingest", "--store", f"duckdb:///{tmp_path / 's.db'}", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]


def test_ib_refused_connection_exits_1_naming_host_and_port(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("APP_IB__PORT", str(port))
    code = main(
        [
            "ingest",
            "--source",
            "ib",
            "--symbol",
            "AAPL",
            "--asset-class",
            "stocks",
            "--store",
            f"duckdb:///{tmp_path / 's.db'}",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert f"IB at 127.0.0.1:{port}" in captured.err.strip().splitlines()[-1]
