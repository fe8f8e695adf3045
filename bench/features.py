"""Feature engine benchmark: batch engine vs TA-Lib, incremental update vs window recompute.

    .venv/bin/python bench/features.py                 # 1,000,000 bars, 20,000 updates
    .venv/bin/python bench/features.py --bars 200000 --updates 5000

1. Batch: the TA-Lib-equivalent indicators (RSI 14, MACD 12/26/9, STOCH 14/3/3, ATR 14,
   BBANDS 20/2, EMA 9/20/50/200, OBV) over N bars, with our engine and with TA-Lib, in the
   same run, best of 3; plus the whole technical set and ``build_features`` (all columns).
2. Incremental: per-bar latency of ``IncrementalFeatures.update`` (p50/p99) over a
   stream, its technical part alone, and the alternative a streaming actor would otherwise
   use: ``build_features`` on the last ``warmup_bars + 1`` bars for every new bar.
The last stdout line is a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import talib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.features import technical as T  # noqa: E402
from app.features.batch import build_features  # noqa: E402
from app.features.incremental import IncrementalFeatures  # noqa: E402
from app.features.spec import default_spec  # noqa: E402
from app.types import AssetClass, Bar  # noqa: E402


def make_bars(n: int, seed: int = 0) -> pd.DataFrame:
    """A random-walk OHLCV frame with a BTC-like price level."""
    rng = np.random.default_rng(seed)
    close = 60_000.0 * np.exp(np.cumsum(rng.normal(0, 0.0015, n)))
    open_ = np.concatenate([[60_000.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0008, (2, n))) * close
    return pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "ts": pd.date_range("2020-01-01", periods=n, freq="5min", tz="UTC").astype(
                "datetime64[ns, UTC]"
            ),
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
            "volume": rng.lognormal(3, 1, n),
        }
    )


def best_of(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def ours(h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
    T.rsi(c, 14)
    T.macd(c, 12, 26, 9)
    T.stoch(h, lo, c, 14, 3, 3)
    T.atr(h, lo, c, 14)
    T.bollinger(c, 20, 2.0)
    for p in (9, 20, 50, 200):
        T.ema(c, p)
    T.obv(c, v)


def theirs(h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
    talib.RSI(c, 14)
    talib.MACD(c, 12, 26, 9)
    talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    talib.ATR(h, lo, c, 14)
    talib.BBANDS(c, 20, 2.0, 2.0, 0)
    for p in (9, 20, 50, 200):
        talib.EMA(c, p)
    talib.OBV(c, v)


def percentiles(ns: list[int]) -> dict[str, float]:
    arr = np.asarray(ns, dtype=np.float64) / 1000.0
    return {"p50_us": round(float(np.percentile(arr, 50)), 2),
            "p99_us": round(float(np.percentile(arr, 99)), 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--recomputes", type=int, default=300)
    args = parser.parse_args()
    spec = default_spec(AssetClass.CRYPTO)

    frame = make_bars(args.bars)
    h, lo, c, v = (frame[k].to_numpy() for k in ("high", "low", "close", "volume"))
    t_talib = best_of(lambda: theirs(h, lo, c, v))
    t_ours = best_of(lambda: ours(h, lo, c, v))
    t_technical = best_of(lambda: T.technical_features(frame["open"].to_numpy(), h, lo, c, v, spec))
    t_build = best_of(lambda: build_features(frame, asset_class=AssetClass.CRYPTO, spec=spec), 1)
    print(f"batch, {args.bars:,} bars: TA-Lib {t_talib:.3f} s, ours {t_ours:.3f} s "
          f"(ratio {t_ours / t_talib:.2f}); all {len(spec.technical_names)} technical columns "
          f"{t_technical:.3f} s; build_features ({len(spec.feature_names)} columns) "
          f"{t_build:.3f} s")  # fmt: skip

    stream = make_bars(spec.warmup_bars + args.updates, seed=1)
    bars = [
        Bar("BTCUSDT", ts.to_pydatetime(), o, hi, low, cl, vol)
        for ts, o, hi, low, cl, vol in zip(
            stream["ts"], stream["open"], stream["high"], stream["low"], stream["close"],
            stream["volume"], strict=True,
        )
    ]  # fmt: skip
    engine = IncrementalFeatures(spec, "BTCUSDT", AssetClass.CRYPTO)
    technical_only = IncrementalFeatures(spec, "BTCUSDT", AssetClass.CRYPTO)
    full_ns, tech_ns = [], []
    clock = time.perf_counter_ns
    for i, bar in enumerate(bars):
        t0 = clock()
        engine.update(bar)
        t1 = clock()
        technical_only._technical(bar.high, bar.low, bar.close, bar.volume)
        technical_only.n += 1
        t2 = clock()
        if i >= spec.warmup_bars:
            full_ns.append(t1 - t0)
            tech_ns.append(t2 - t1)
    window = spec.warmup_bars + 1
    recompute_ns = []
    for end in range(window, window + args.recomputes):
        t0 = clock()
        build_features(stream.iloc[end - window : end], asset_class=AssetClass.CRYPTO, spec=spec)
        recompute_ns.append(clock() - t0)
    full, tech, recompute = percentiles(full_ns), percentiles(tech_ns), percentiles(recompute_ns)
    print(f"incremental, {args.updates:,} updates: update() p50 {full['p50_us']} us p99 "
          f"{full['p99_us']} us; technical part p50 {tech['p50_us']} us p99 {tech['p99_us']} us; "
          f"batch recompute of a {window}-bar window p50 {recompute['p50_us']} us p99 "
          f"{recompute['p99_us']} us")  # fmt: skip
    summary = {
        "bars": args.bars,
        "talib_s": round(t_talib, 4),
        "batch_same_indicators_s": round(t_ours, 4),
        "batch_vs_talib": round(t_ours / t_talib, 2),
        "batch_technical_s": round(t_technical, 4),
        "build_features_s": round(t_build, 4),
        "incremental_update": full,
        "incremental_technical": tech,
        "window_recompute": recompute,
        "speedup_vs_recompute_p50": round(recompute["p50_us"] / full["p50_us"], 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
