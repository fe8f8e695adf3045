"""Ingest benchmark: bars through ``DuckDBStore.write_bars`` vs a bare DuckDB Arrow insert.

Both start from the same pandas frame and write into a fresh DuckDB file with the same
table; the bare path does only ``pa.Table.from_pandas`` + ``INSERT INTO bars SELECT * FROM
arrow``, the store adds validation, in-batch dedup and the anti-join that makes re-ingest
idempotent. Also measured in the same run: re-ingesting the same frame (every row is a
duplicate, 0 inserted), the alternative design, PRIMARY KEY + ``ON CONFLICT DO NOTHING``,
and the live path: one new bar appended to the full table (median of 50).
Each variant runs ``--repeat`` times; the best run counts (the machine is shared).

    .venv/bin/python bench/ingest.py            # 1,000,000 bars (10 symbols x 100,000)
    .venv/bin/python bench/ingest.py --rows 200000 --repeat 1

The last line of stdout is JSON with rows/s of each variant and ``ratio`` = store / bare
(goal >= 0.5).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.store.duckdb_store import DuckDBStore, create_table_sql  # noqa: E402

GOAL = 0.5


def make_bars(rows: int, symbols: int, seed: int = 0) -> pd.DataFrame:
    """A random-walk bar frame with the store's columns, ``symbols`` symbols of equal length."""
    rng = np.random.default_rng(seed)
    per = rows // symbols
    ts = pd.date_range("2024-01-01", periods=per, freq="5min", tz="UTC")
    frames = []
    for i in range(symbols):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, per)))
        open_ = np.concatenate([[100.0], close[:-1]])
        spread = np.abs(rng.normal(0, 0.001, per)) * close
        frames.append(
            pd.DataFrame(
                {
                    "symbol": f"SYM{i:03d}",
                    "ts": ts,
                    "open": open_,
                    "high": np.maximum(open_, close) + spread,
                    "low": np.minimum(open_, close) - spread,
                    "close": close,
                    "volume": rng.uniform(1, 100, per),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame["ts"] = frame["ts"].astype("datetime64[ns, UTC]")
    return frame


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    inserted = fn()
    return time.perf_counter() - start, inserted


def bare_insert(path: Path, frame: pd.DataFrame, primary_key: bool = False) -> tuple[float, int]:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'").fetchall()
    ddl = create_table_sql("bars")
    if primary_key:
        ddl = ddl[:-1] + ", PRIMARY KEY (symbol, ts))"
    con.execute(ddl).fetchall()
    sql = "INSERT INTO bars SELECT * FROM batch"
    if primary_key:
        sql += " ON CONFLICT DO NOTHING"

    def run() -> int:
        con.register("batch", pa.Table.from_pandas(frame, preserve_index=False))
        [(count,)] = con.execute(sql).fetchall()
        return int(count)

    try:
        return timed(run)
    finally:
        con.close()


def store_insert(path: Path, frame: pd.DataFrame) -> tuple[float, int, float, int, float]:
    """Bulk write, re-ingest of the same frame, then the median of 50 one-bar live appends."""
    with DuckDBStore(path) as store:
        seconds, inserted = timed(lambda: store.write_bars(frame))
        again_seconds, again = timed(lambda: store.write_bars(frame))
        last = frame.iloc[[-1]].reset_index(drop=True)
        appends = []
        for k in range(1, 51):
            bar = last.assign(ts=last["ts"] + pd.Timedelta(minutes=5 * k))
            append_seconds, appended = timed(lambda bar=bar: store.write_bars(bar))
            assert appended == 1
            appends.append(append_seconds)
    return seconds, inserted, again_seconds, again, float(np.median(appends))


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    frame = make_bars(args.rows, args.symbols)
    rows = len(frame)
    best: dict[str, float] = {"bare": 0.0, "store": 0.0, "reingest": 0.0, "pk": 0.0}
    append_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        for run in range(args.repeat):
            bare_s, bare_n = bare_insert(Path(tmp) / f"bare{run}.db", frame)
            store_s, store_n, again_s, again_n, append_s = store_insert(
                Path(tmp) / f"store{run}.db", frame
            )
            append_ms.append(append_s * 1000)
            pk_s, pk_n = bare_insert(Path(tmp) / f"pk{run}.db", frame, primary_key=True)
            assert bare_n == store_n == pk_n == rows, (bare_n, store_n, pk_n)
            assert again_n == 0, f"re-ingest inserted {again_n} rows"
            for name, seconds in (
                ("bare", bare_s),
                ("store", store_s),
                ("reingest", again_s),
                ("pk", pk_s),
            ):
                best[name] = max(best[name], rows / seconds)
            print(
                f"run {run + 1}: bare {bare_s:.2f} s, store {store_s:.2f} s, "
                f"re-ingest {again_s:.2f} s, primary key + ON CONFLICT {pk_s:.2f} s, "
                f"one-bar append {append_s * 1000:.1f} ms",
                flush=True,
            )
    ratio = best["store"] / best["bare"]
    result = {
        "bench": "ingest",
        "rows": rows,
        "symbols": args.symbols,
        "repeat": args.repeat,
        "bare_rows_per_s": round(best["bare"]),
        "store_rows_per_s": round(best["store"]),
        "ratio": round(ratio, 3),
        "goal": GOAL,
        "ok": ratio >= GOAL,
        "reingest_rows_per_s": round(best["reingest"]),
        "pk_on_conflict_rows_per_s": round(best["pk"]),
        "live_append_ms_median": round(min(append_ms), 2),
        "duckdb": duckdb.__version__,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
