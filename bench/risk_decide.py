"""Cost of RiskEngine.decide() per call, by path, against the floor of building a RiskDecision.

The backtest runs the engine on every bar (a million bars with a signal each), so the common
paths must be cheap. Prints one line per path (µs per call and the ratio to the floor) and a
final dict. Run: .venv/bin/python bench/risk_decide.py [--calls N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from app.config import RiskSettings
from app.risk.engine import MarketSnapshot, PortfolioSnapshot, RiskEngine
from app.types import (
    AssetClass,
    DecisionAction,
    Position,
    RiskDecision,
    RiskState,
    Signal,
    SignalAction,
)

T0 = datetime(2025, 1, 6, tzinfo=UTC)
STEP = timedelta(minutes=5)


def per_call_us(fn: Callable[[int], object], calls: int, repeats: int = 3) -> float:
    """Best of ``repeats`` runs of ``calls`` calls, in µs per call (best = least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(calls):
            fn(i)
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def main() -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000)
    calls = parser.parse_args().calls

    times = [T0 + i * STEP for i in range(calls)]
    markets = [MarketSnapshot("BTCUSDT", t, 100.0, 1.0, AssetClass.CRYPTO) for t in times]
    flat = PortfolioSnapshot(1e6, 1e6, {})
    held = PortfolioSnapshot(1e6, 1e6, {"BTCUSDT": Position("BTCUSDT", 1.0, 100.0, T0)})

    def signals(action: SignalAction, confidence: float) -> list[Signal]:
        return [Signal("BTCUSDT", t - STEP, action, confidence) for t in times]

    hold, low, high = (
        signals(SignalAction.HOLD, 0.9),
        signals(SignalAction.BUY, 0.5),
        signals(SignalAction.BUY, 0.9),
    )
    engine = RiskEngine(RiskSettings())
    entry_engine = RiskEngine(RiskSettings(max_orders_per_minute=10**9))

    paths: dict[str, Callable[[int], object]] = {
        "floor_risk_decision": lambda i: RiskDecision(
            times[i], "BTCUSDT", DecisionAction.HOLD, RiskState.ACTIVE, (), ("signal_hold",)
        ),
        "hold_signal": lambda i: engine.decide(hold[i], flat, markets[i]),
        "below_gate": lambda i: engine.decide(low[i], flat, markets[i]),
        "already_long": lambda i: engine.decide(high[i], held, markets[i]),
        "on_mark_quiet": lambda i: engine.on_mark(flat, times[i], AssetClass.CRYPTO),
        "snapshot_build": lambda i: MarketSnapshot(
            "BTCUSDT", times[i], 100.0, 1.0, AssetClass.CRYPTO
        ),
    }
    results = {name: per_call_us(fn, calls) for name, fn in paths.items()}
    # entries record their ids, so each repeat needs a fresh engine (one pass only)
    results["entry"] = per_call_us(
        lambda i: entry_engine.decide(high[i], flat, markets[i]), calls, 1
    )
    floor = results["floor_risk_decision"]
    for name, us in results.items():
        print(f"{name:22s} {us:7.2f} us/call  {us / floor:5.1f}x floor")
    summary = {f"{k}_us": round(v, 3) for k, v in results.items()}
    summary["calls"] = calls
    print(summary)
    return summary


if __name__ == "__main__":
    main()
