"""Bar close -> signals for N tickers through model -> risk -> paper execution, p50 / p99.

The plain worker's path (``TradingSession.on_bar_close``: the paper venue with its state file,
the DuckDB journal, the risk engine, the model) on simulator bars copied to N tickers. After
each close, the model's forward alone on the same windows is timed as the reference (what no
change to the loop can remove). The first ``--warmup`` closes are excluded.

    .venv/bin/python bench/bar_close.py             # 10 tickers, 2 days: ~350 closes
    .venv/bin/python bench/bar_close.py --days 2 --tickers 10

The last stdout line is JSON: ``bar_close`` and ``model`` p50 / p99 in ms, their ratio, and
``overhead`` (the close minus the model forward of the same close).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.clock import ReplayClock  # noqa: E402
from app.live.model import SignalModel, inference_threads  # noqa: E402
from app.live.series import SeriesReplay  # noqa: E402
from app.types import BAR_INTERVAL  # noqa: E402


def _pct(ms: np.ndarray) -> dict:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
    }


def market(tickers: int = 10, days: int = 2) -> tuple[dict, dict, SignalModel]:
    """One simulated series copied to ``tickers`` tickers, their classes, and the tiny LSTM of
    the live tests (seeded: the same model on every call; bench/serve_bar_close.py's too)."""
    from tests.unit.live.session_builders import sim_bars, tiny_model

    bars, classes = sim_bars(days=days)
    base = next(iter(bars.values()))
    many = {f"T{i:02d}USDT": base for i in range(tickers)}
    many_classes = dict.fromkeys(many, next(iter(classes.values())))
    return many, many_classes, tiny_model(bars)


def bar_close_latency(
    tmp: Path,
    tickers: int = 10,
    days: int = 2,
    warmup: int = 20,
    threads: int = 1,
    journal_log: bool = True,
) -> dict:
    from tests.unit.live.session_builders import paper_session

    many, many_classes, model = market(tickers, days)
    closes = list(SeriesReplay(many, many_classes, model).closes())
    clock = ReplayClock(closes[0].ts)
    session, store = paper_session(tmp, model, many_classes, clock, journal_log=journal_log)
    took: list[float] = []
    forward: list[float] = []

    async def go() -> None:
        await session.start()
        for close in closes:
            clock.advance_to(close.ts + BAR_INTERVAL)
            t = time.perf_counter()
            await session.on_bar_close(close)
            dt = time.perf_counter() - t
            if close.windows:
                took.append(dt)
                t = time.perf_counter()
                model.signals(close.ts, dict(close.windows))
                forward.append(time.perf_counter() - t)
        await session.stop()

    with inference_threads(threads):  # as the worker runs it (model.inference_threads)
        asyncio.run(go())
    store.close()
    ms = np.asarray(took[warmup:]) * 1e3
    ref = np.asarray(forward[warmup:]) * 1e3
    out = {
        "tickers": tickers,
        "bar_closes": int(ms.size),
        "warmup_excluded": warmup,
        "torch_threads": threads,
        "journal_log": journal_log,
        "orders": session.records.orders,
        "fills": len(session.records.fills),
        "bar_close": _pct(ms),
        "model": _pct(ref),
        "overhead": _pct(ms - ref),
    }
    out["ratio_p50"] = round(out["bar_close"]["p50_ms"] / out["model"]["p50_ms"], 2)
    out["ratio_p99"] = round(out["bar_close"]["p99_ms"] / out["model"]["p99_ms"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tickers", type=int, default=10)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="model.inference_threads (0: torch's)")
    ap.add_argument(
        "--no-journal-log", action="store_true", help="journal writes to the store at every call"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        got = bar_close_latency(
            Path(tmp), args.tickers, args.days, args.warmup, args.threads, not args.no_journal_log
        )
    print(json.dumps(got))


if __name__ == "__main__":
    main()
