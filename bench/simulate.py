"""Benchmark: generate, write and load a 60-day, 4-symbol simulation.

Reference in the same run: a bare numpy Student-t random walk with OHLCV for the same bar
counts (the floor of making prices at all), so the ratio shows what the calendars, news,
flow, Fear & Greed walk and oracle cost on top.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd

from app.sim.config import SimConfig
from app.sim.files import load_simulation, write_simulation
from app.sim.market import SimulatedMarket


def bare_walk(counts: dict[str, int], seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = {}
    for sym, n in counts.items():
        r = rng.standard_t(5.0, n) * 1e-3
        close = 100.0 * np.exp(np.cumsum(r))
        open_ = np.concatenate([[100.0], close[:-1]])
        wick = np.abs(rng.normal(size=(2, n))) * 5e-4
        out[sym] = pd.DataFrame(
            {
                "ts": pd.date_range("2025-01-06", periods=n, freq="5min", tz="UTC"),
                "open": open_,
                "high": np.maximum(open_, close) * (1 + wick[0]),
                "low": np.minimum(open_, close) * (1 - wick[1]),
                "close": close,
                "volume": rng.lognormal(5, 0.4, n),
            }
        )
    return out


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cfg = SimConfig(days=args.days)
    result = SimulatedMarket(cfg).run()
    counts = {s: len(f) for s, f in result.bars.items()}
    t_gen = best(lambda: SimulatedMarket(cfg).run(), args.repeat)
    t_ref = best(lambda: bare_walk(counts, 0), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        t_write = best(lambda: write_simulation(result, tmp), args.repeat)
        t_load = best(lambda: load_simulation(tmp), args.repeat)
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print(f"bars {sum(counts.values())} {counts}, news {len(result.news)}, flow {len(result.flow)}")
    print(f"generate {t_gen:.2f} s | write {t_write:.2f} s | load {t_load:.2f} s")
    print(f"reference bare random walk {t_ref:.3f} s")
    print(f"ratio generate / reference: {t_gen / t_ref:.0f}x")


if __name__ == "__main__":
    main()
