"""Backtester speed against vectorbt on the same orders, measured in the same run.

1,000,000 five-minute bars of a synthetic random walk, one ticker, a signal on every bar (random
BUY/SELL/HOLD, confidence uniform in [0.5, 1]); fees and slippage 0.1 bps each, so random trading
does not drain the account within the run (a drained account would stop trading). Ours: the full
event-driven run (stateful risk engine: on_mark + decide per bar, next-open fills, intrabar
stops). Reference:
``vbt.Portfolio.from_orders`` on the orders our run produced (one row per bar close plus one per
fill), timed after a warm-up call so numba compilation is excluded. Checks that both final
equities agree, and counts what our fast path asked the risk engine (signals the engine itself
marks as certain HOLDs are counted without a call, a same-direction signal on an open position is
answered without a snapshot, see docs/BACKTEST.md).

``--breakdown`` also times (a) the same run through the reference path, an engine subclass that
gets ``on_mark`` and ``decide`` with Signal / MarketSnapshot / PortfolioSnapshot objects on every
bar as the backtester did before the fast path, checking it gives the very same fills, and (b) the
bare risk-engine object API per bar (snapshots + on_mark + decide, no fills).

Run: .venv/bin/python bench/backtest.py [--bars 1000000] [--breakdown]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache/numba"))

from app.backtest.engine import BacktestConfig, run_backtest  # noqa: E402
from app.backtest.vectorbt_check import marks_frame, replay_inputs, run_vectorbt  # noqa: E402
from app.config import CostSettings, RiskSettings  # noqa: E402
from app.risk.engine import (  # noqa: E402
    CERTAIN_HOLD_REASON_KEYS,
    MarketSnapshot,
    PortfolioSnapshot,
    RiskEngine,
)
from app.types import AssetClass, Signal, SignalAction  # noqa: E402

TICKER = "BTCUSDT"
CONFIG = BacktestConfig(
    costs=CostSettings(fee_bps={AssetClass.CRYPTO: 0.1}, slippage_bps=0.1),
)


def random_walk(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, 0.001, n)) * close
    ts = pd.date_range("2020-01-01", periods=n, freq="5min", tz="UTC")
    return pd.DataFrame(
        {
            "ts": ts.astype("datetime64[ns, UTC]"),
            "open": open_,
            "high": np.maximum(open_, close) + wick,
            "low": np.minimum(open_, close) - wick,
            "close": close,
            "volume": 1.0,
        }
    )


def random_signals(bars: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(bars)
    return pd.DataFrame(
        {
            "ts": bars["ts"],
            "ticker": TICKER,
            "signal": rng.choice(np.array(["BUY", "SELL", "HOLD"]), n),
            "confidence": rng.uniform(0.5, 1.0, n),
        }
    )


class EveryCallEngine(RiskEngine):
    """Overriding on_mark and decide makes the backtester call both on every bar, with objects:
    the reference path (the behaviour before the fast path)."""

    __slots__ = ()

    def on_mark(self, portfolio, now, asset_class):  # noqa: D102 - the parent's contract
        return super().on_mark(portfolio, now, asset_class)

    def decide(self, signal, portfolio, market):  # noqa: D102
        return super().decide(signal, portfolio, market)


def risk_api_only(bars: pd.DataFrame, signals: pd.DataFrame) -> dict[str, float]:
    """Seconds per stage of the per-bar risk-engine calls alone (flat portfolio, no fills):
    building the Signal / MarketSnapshot / PortfolioSnapshot objects, on_mark, decide."""
    engine = RiskEngine(RiskSettings())
    open_dt = pd.DatetimeIndex(bars["ts"]).to_pydatetime()
    close_dt = pd.DatetimeIndex(bars["ts"] + pd.Timedelta(minutes=5)).to_pydatetime()
    actions = {"BUY": SignalAction.BUY, "SELL": SignalAction.SELL, "HOLD": SignalAction.HOLD}
    words = [actions[w] for w in signals["signal"]]
    conf = signals["confidence"].tolist()
    close = bars["close"].tolist()
    n = len(close)
    out: dict[str, float] = {}
    start = time.perf_counter()
    sigs = [Signal(TICKER, open_dt[j], words[j], conf[j]) for j in range(n)]
    out["build_signal_s"] = time.perf_counter() - start
    start = time.perf_counter()
    markets = [
        MarketSnapshot(TICKER, close_dt[j], close[j], 0.2, AssetClass.CRYPTO) for j in range(n)
    ]
    out["build_market_snapshot_s"] = time.perf_counter() - start
    start = time.perf_counter()
    snaps = [PortfolioSnapshot(100_000.0, 100_000.0, {}, ()) for _ in range(n)]
    out["build_portfolio_snapshot_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for j in range(n):
        engine.on_mark(snaps[j], close_dt[j], AssetClass.CRYPTO)
    out["on_mark_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for j in range(n):
        if engine.decide(sigs[j], snaps[j], markets[j]).orders:
            engine = RiskEngine(engine.settings)  # forget the order: keep testing the entry path
    out["decide_s"] = time.perf_counter() - start
    return {k: round(v, 3) for k, v in out.items()}


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--breakdown", action="store_true", help="reference path and API costs")
    args = parser.parse_args()
    n = args.bars
    bars = random_walk(n)
    signals = random_signals(bars)
    data = {TICKER: bars}
    classes = {TICKER: AssetClass.CRYPTO}

    start = time.perf_counter()
    result = run_backtest(data, signals, classes, CONFIG)
    ours = time.perf_counter() - start

    inputs = replay_inputs(result, marks_frame(data, result))
    small = {TICKER: bars.iloc[:2000]}
    warm_result = run_backtest(small, signals.iloc[:2000], classes, CONFIG)
    warm = replay_inputs(warm_result, marks_frame(small, warm_result))
    buffer = 10.0 * result.initial_equity
    run_vectorbt(warm, result.initial_equity + buffer)  # compile / load the numba cache
    start = time.perf_counter()
    pf = run_vectorbt(inputs, result.initial_equity + buffer)
    vbt_final = float(np.asarray(pf.value()).reshape(-1)[-1]) - buffer
    theirs = time.perf_counter() - start

    certain = sum(result.hold_reasons[k] for k in CERTAIN_HOLD_REASON_KEYS if k)
    same = result.hold_reasons["already_long"] + result.hold_reasons["already_short"]
    out: dict[str, object] = {
        "bars": n,
        "fills": len(result.fills),
        "vectorbt_rows": len(inputs.close),
        "ours_s": round(ours, 3),
        "vectorbt_s": round(theirs, 3),
        "ratio_ours_over_vectorbt": round(ours / theirs, 1),
        "ours_us_per_bar": round(ours / n * 1e6, 2),
        "signals": result.signals_run,
        "certain_holds_no_call": certain,
        "same_direction_no_snapshot": same,
        "decide_fields_calls": result.signals_run - certain - same,
        "final_equity_ours": result.final_equity,
        "final_equity_vectorbt": vbt_final,
        "rel_error": abs(vbt_final - result.final_equity) / abs(result.final_equity),
    }
    if args.breakdown:
        start = time.perf_counter()
        every_call = EveryCallEngine(CONFIG.risk)
        reference = run_backtest(data, signals, classes, CONFIG, engine=every_call)
        out["reference_every_call_s"] = round(time.perf_counter() - start, 3)
        out["reference_over_ours"] = round(out["reference_every_call_s"] / ours, 1)
        out["reference_fills_identical"] = reference.fills.equals(result.fills) and (
            reference.equity.equals(result.equity)
        )
        stages = risk_api_only(bars, signals)
        out["risk_api_only_s"] = round(sum(stages.values()), 3)
        out.update(stages)
    for key, value in out.items():
        print(f"{key:>26}: {value}")
    print(out)
    return out


if __name__ == "__main__":
    main()
