"""Drive the live execution path bar by bar, as the live loop will: bars into the
ExecutionEngine (and through it the paper venue), then at each bar close the risk engine's
on_mark and decide on the engine's PortfolioSnapshot, and the approved decisions back into
``ExecutionEngine.execute``. Bars are walked in the backtester's order (by time, ties in ticker
order), so the two can be compared fill by fill."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from app.broker.execution import ExecutionEngine
from app.broker.fill_model import wilder_atr
from app.risk.engine import RiskEngine
from app.risk.snapshots import MarketSnapshot
from app.types import AssetClass, Bar, RiskDecision, Signal, SignalAction

FIVE_MIN = pd.Timedelta(minutes=5)


def bar_events(bars: Mapping[str, pd.DataFrame]) -> list[tuple[pd.Timestamp, str, int]]:
    rows = [
        (ts, k, sym, j) for k, (sym, f) in enumerate(bars.items()) for j, ts in enumerate(f["ts"])
    ]
    rows.sort(key=lambda r: (r[0], r[1]))
    return [(ts, sym, j) for ts, _, sym, j in rows]


async def replay(
    engine: ExecutionEngine,
    risk: RiskEngine,
    bars: Mapping[str, pd.DataFrame],
    signals: pd.DataFrame,
    asset_classes: Mapping[str, AssetClass],
    calendar: AssetClass,
) -> list[RiskDecision]:
    """Returns every decision that carried orders, in order."""
    atr = {
        s: wilder_atr(f["high"].to_numpy(), f["low"].to_numpy(), f["close"].to_numpy())
        for s, f in bars.items()
    }
    sig = {(r.ticker, pd.Timestamp(r.ts)): r for r in signals.itertuples(index=False)}
    events = bar_events(bars)
    decided: list[RiskDecision] = []
    i = 0
    while i < len(events):
        ts = events[i][0]
        group = []
        while i < len(events) and events[i][0] == ts:
            group.append(events[i])
            i += 1
        for _, sym, j in group:
            r = bars[sym].iloc[j]
            bar = Bar(
                sym,
                ts.to_pydatetime(),
                float(r.open),
                float(r.high),
                float(r.low),
                float(r.close),
                float(r.get("volume", 0.0)),
            )
            await engine.on_bar(bar)
        now = (ts + FIVE_MIN).to_pydatetime()
        decision = risk.on_mark(engine.mark(now), now, calendar)
        if decision is not None and decision.orders:
            decided.append(decision)
            await engine.execute(decision)
        for _, sym, j in group:
            s = sig.get((sym, ts))
            if s is None:
                continue
            close = float(bars[sym]["close"].iloc[j])
            market = MarketSnapshot(sym, now, close, float(atr[sym][j]), asset_classes[sym])
            signal = Signal(sym, ts.to_pydatetime(), SignalAction(s.signal), float(s.confidence))
            decision = risk.decide(signal, engine.snapshot(), market)
            if decision.orders:
                decided.append(decision)
                await engine.execute(decision)
    return decided


def as_float(x: object) -> float:
    return float(np.float64(x))
