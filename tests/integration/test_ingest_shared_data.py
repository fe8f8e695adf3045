"""Acceptance: every real OHLCV file of ../shared/data ingests through the CLI into DuckDB.

Each file must land whole (these files are clean: every row is a valid unique bar), a second
run must write nothing, and a corrupted copy must lose exactly the corrupted rows, each counted
under its reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from app.cli.main import main
from app.store import open_store
from tests.conftest import REPO_ROOT, shared_ohlcv_files


def _ingest(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["ingest", *argv])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def _data_rows(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines()[1:] if line.strip())


@pytest.mark.parametrize("path", shared_ohlcv_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shared_file_ingests_whole_and_only_once(
    shared_data: Path, path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"duckdb:///{tmp_path / 'store.db'}"
    n = _data_rows(path)
    code, first = _ingest(capsys, "--source", "csv", "--path", str(path), "--store", url)
    assert code == 0
    assert first["rows_read"] == n
    assert first["rows_written"] == n
    assert first["rows_rejected"] == 0 and first["rejected_by_reason"] == {}
    code, second = _ingest(capsys, "--source", "csv", "--path", str(path), "--store", url)
    assert code == 0
    assert second["rows_written"] == 0 and second["duplicates_skipped"] == n


def test_stored_values_equal_the_file(shared_data: Path, tmp_path: Path, capsys) -> None:
    path = shared_data / "stocks_yahoo_5m" / "SPY_5m.csv"
    url = f"duckdb:///{tmp_path / 'store.db'}"
    _ingest(capsys, "--path", str(path), "--store", url)
    expected = pd.read_csv(path)
    store = open_store(url)
    try:
        stored = store.read_bars("SPY")
    finally:
        store.close()
    assert stored["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist() == expected["ts"].tolist()
    for column in ("open", "high", "low", "close", "volume"):
        assert stored[column].tolist() == expected[column].astype(float).tolist(), column


def test_a_folder_ingests_every_file_with_symbols_from_names(
    shared_data: Path, tmp_path: Path, capsys
) -> None:
    folder = shared_data / "crypto_binance_spot_5m"
    url = f"duckdb:///{tmp_path / 'store.db'}"
    code, summary = _ingest(
        capsys,
        "--path",
        str(folder),
        "--symbol",
        "ETHUSDT",
        "--symbol",
        "SOLUSDT",
        "--asset-class",
        "crypto",
        "--store",
        url,
    )
    assert code == 0
    assert summary["symbols"] == ["ETHUSDT", "SOLUSDT"] and summary["rows_written"] == 60_000
    store = open_store(url)
    try:
        assert sorted(store.symbols()) == ["ETHUSDT", "SOLUSDT"]
    finally:
        store.close()


def _corrupt(source: Path, out: Path, n: int) -> dict[str, str]:
    """The first ``n`` rows of ``source`` with one corruption per reason; returns lost ts."""
    header, *rows = source.read_text().splitlines()[: n + 1]
    lost = {}
    fields = rows[100].split(",")
    fields[2] = "NaN"  # high
    rows[100] = ",".join(fields)
    lost["nan"] = fields[0]
    fields = rows[200].split(",")
    fields[2] = str(float(fields[3]) * 0.9)  # high below low
    rows[200] = ",".join(fields)
    lost["high_low"] = fields[0]
    rows[301], rows[300] = rows[300], rows[301]  # unsorted: the later row comes first
    lost["out_of_order"] = rows[301].split(",")[0]
    rows.insert(401, rows[400])  # the same ts twice: the copy goes, the original stays
    rows.insert(500, "<<<<<<< garbage from a merge conflict")
    out.write_text("\n".join([header, *rows]) + "\n")
    return lost


def test_a_corrupted_copy_loses_exactly_the_corrupted_rows(
    shared_data: Path, tmp_path: Path, capsys
) -> None:
    source = shared_data / "crypto_binance_spot_5m" / "BTCUSDT_5m.csv"
    corrupted = tmp_path / "BTCUSDT_5m.csv"
    lost = _corrupt(source, corrupted, n=2000)
    url = f"duckdb:///{tmp_path / 'store.db'}"
    rejects = tmp_path / "rejects.csv"
    code, summary = _ingest(
        capsys, "--path", str(corrupted), "--store", url, "--rejects", str(rejects)
    )
    assert code == 0
    assert summary["rows_read"] == 2002
    assert summary["rejected_by_reason"] == {
        "unparseable": 1,
        "nan": 1,
        "high_low": 1,
        "duplicate": 1,
        "out_of_order": 1,
    }
    assert summary["rows_rejected"] == 5 and summary["rows_written"] == 1997
    original = pd.read_csv(source, nrows=2000)["ts"]
    store = open_store(url)
    try:
        stored = store.read_bars("BTCUSDT")["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    finally:
        store.close()
    assert set(original) - set(stored) == set(lost.values())
    written = pd.read_csv(rejects, dtype=str, keep_default_na=False)
    assert written["reason"].tolist() == [
        "nan",
        "high_low",
        "out_of_order",
        "duplicate",
        "unparseable",
    ]
    assert written["row"].tolist() == ["102", "202", "303", "403", "502"]
    assert "high=nan" in written["detail"].iloc[0]
    assert "merge conflict" in written["detail"].iloc[4]


def _python_m_app(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "app", "ingest", *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_python_m_app_ingest_runs_and_bad_input_exits_2(shared_data: Path, tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'store.db'}"
    path = shared_data / "forex_mt5_5m" / "EURUSD_5m.csv"
    done = _python_m_app("--source", "csv", "--path", str(path), "--store", url)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["rows_written"] == _data_rows(path) == 20_000

    bad = tmp_path / "EURUSD_5m.csv"
    bad.write_text("time,open,high,low,close\n2026-03-26T14:00:00Z,1,1,1,1\n")
    failed = _python_m_app("--path", str(bad), "--store", url)
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(bad) in lines[0] and "missing column(s) ['ts', 'volume']" in lines[0]
    assert failed.stdout == ""
