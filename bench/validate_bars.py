"""Validation benchmark: ``validate_bars`` (vectorized) vs one checked ``Bar`` per row.

Both check the same invariants (finite positive prices, high/low consistency, volume >= 0,
UTC timestamps); the reference builds ``app.types.Bar`` objects in a Python loop on a slice
and is extrapolated to the full size. Also measured in the same run: CSV read + validate +
DuckDB write of every ``*_5m.csv`` under ../shared/data, and the second (idempotent) run.

    .venv/bin/python bench/validate_bars.py                 # 1,000,000 rows
    .venv/bin/python bench/validate_bars.py --rows 200000

The last line of stdout is JSON; ``ratio`` = per-row reference time / vectorized time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.schema.bar_files import CsvSource, symbol_from_filename  # noqa: E402
from app.schema.bars import validate_bars  # noqa: E402
from app.store import open_store  # noqa: E402
from app.types import Bar  # noqa: E402


def raw_frame(rows: int) -> pd.DataFrame:
    """ISO-string timestamps (as a CSV gives them) and float prices, all valid."""
    ts = pd.date_range("2020-01-01", periods=rows, freq="5min")
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.002, rows)))
    return pd.DataFrame(
        {
            "ts": np.char.add(np.datetime_as_string(ts.values, unit="s"), "Z"),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": 1.0,
        }
    )


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def shared_ingest(shared: Path) -> dict[str, float]:
    files = sorted(shared.glob("*/*_5m.csv"))
    if not files:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"duckdb:///{tmp}/bench.db")
        try:
            start = time.perf_counter()
            written = sum(
                store.write_bars(CsvSource(f).load(symbol_from_filename(f)).good) for f in files
            )
            first = time.perf_counter() - start
            start = time.perf_counter()
            again = sum(
                store.write_bars(CsvSource(f).load(symbol_from_filename(f)).good) for f in files
            )
            second = time.perf_counter() - start
        finally:
            store.close()
    return {
        "files": len(files),
        "rows": written,
        "first_s": round(first, 2),
        "second_s": round(second, 2),
        "second_written": again,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()

    raw = raw_frame(args.rows)
    vectorized = best_of(args.repeat, lambda: validate_bars(raw, "X"))
    sample = raw.iloc[: args.reference_rows].assign(
        ts=pd.to_datetime(raw["ts"].iloc[: args.reference_rows], utc=True)
    )

    def per_row() -> None:
        for row in sample.itertuples(index=False):
            Bar("X", row.ts.to_pydatetime(), row.open, row.high, row.low, row.close, row.volume)

    reference = best_of(args.repeat, per_row) * args.rows / args.reference_rows
    result = {
        "rows": args.rows,
        "vectorized_s": round(vectorized, 3),
        "per_row_estimate_s": round(reference, 2),
        "ratio": round(reference / vectorized, 1),
        "shared_data": shared_ingest(args.shared),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
