"""One account replaying one ticker bar by bar through the backtest's own loop.

The backtester (``app.backtest.engine``) walks a whole signal file at once; an agent decides one
bar at a time. ``Replay`` drives the backtester's per-bar phases itself, on the same objects:

- ``open_bar(j)``: the backtest's open phase (orders queued at the previous close fill at this
  open through ``app.broker.fill_model``, then the position's stop-loss / take-profit inside the
  bar) on its ``Portfolio``;
- ``close_bar(j, direction, confidence)``: the backtest's close phase: mark to market, roll the
  trading day, ``RiskEngine.on_mark`` (the daily drawdown halt), then, when the agent asks for
  an entry, a BUY/SELL signal with the model's probability of that side goes through
  ``RiskEngine.decide``: the confidence gate, the halt, the caps and the stop levels are the
  engine's, and an approved entry carries its stop-loss and take-profit;
- ``exit(j)``: a reduce-only market order checked by ``RiskEngine.check_order`` (exits pass in
  every state, as the risk rules say) and queued for the next open like any close.

The agent may take *less* than the approved size (``AgentRiskEngine.size_fraction``), never more.
A replay that sends the model's own signals reproduces ``run_backtest`` exactly (tested).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

import pandas as pd

# The backtester's per-bar phases: reused, not re-implemented (see the module docstring).
from app.backtest.engine import BacktestConfig, BacktestResult, _Simulation
from app.backtest.inputs import Ticker, prepare_tickers
from app.config import RiskSettings
from app.risk.engine import RiskEngine
from app.risk.snapshots import MarketSnapshot, PortfolioSnapshot
from app.types import (
    AssetClass,
    DecisionAction,
    Order,
    RiskDecision,
    RiskState,
    Side,
    Signal,
    to_ns,
)

_ENTRIES = (DecisionAction.OPEN_LONG, DecisionAction.OPEN_SHORT)
_BUY, _SELL = 0, 1  # backtest signal codes (app.backtest.inputs.SIGNAL_CODES)


class AgentRiskEngine(RiskEngine):
    """The live risk engine, plus two things the environment needs: the last decision it made
    (its reasons go into the step's ``info``) and the agent's size fraction in (0, 1], applied to
    an approved entry after every rule passed: the agent can only take less risk."""

    def __init__(self, settings: RiskSettings) -> None:
        super().__init__(settings)
        self.size_fraction = 1.0
        self.last: RiskDecision | None = None

    def decide(
        self, signal: Signal, portfolio: PortfolioSnapshot, market: MarketSnapshot
    ) -> RiskDecision:
        decision = super().decide(signal, portfolio, market)
        f = self.size_fraction
        if decision.action in _ENTRIES and f < 1.0:
            orders = tuple(replace(o, qty=o.qty * f) for o in decision.orders)
            decision = replace(
                decision, orders=orders, reasons=(*decision.reasons, f"agent_size:{f:g}")
            )
        self.last = decision
        return decision


class Replay:
    """The backtest's simulation of one ticker, advanced one phase at a time."""

    def __init__(self, template: Ticker, ts_ns: list[int], config: BacktestConfig) -> None:
        n = len(ts_ns)
        self.ticker = replace(
            template, signal=[-1] * n, confidence=[0.0] * n, route=[-1] * n, pending=[]
        )
        self.ts_ns = ts_ns
        self.engine = AgentRiskEngine(config.risk)
        self.sim = _Simulation(
            [self.ticker], self.engine, template.asset_class, config.initial_equity
        )
        self.slot = self.sim.pf.slot(template.symbol)

    @staticmethod
    def prepare(
        bars: pd.DataFrame, symbol: str, asset_class: AssetClass, config: BacktestConfig
    ) -> tuple[Ticker, list[int]]:
        """Columns, causal ATR and fill model of one ticker, once per series (shared by the
        replays built from it; each replay gets its own mutable lists)."""
        empty = pd.DataFrame({"ts": [], "ticker": [], "signal": [], "confidence": []})
        tickers, ts_arrays = prepare_tickers(
            {symbol: bars}, empty, {symbol: asset_class}, config, RiskEngine(config.risk)
        )
        return tickers[0], ts_arrays[0].tolist()

    # ------------------------------------------------------------------ phases

    def open_bar(self, j: int) -> None:
        """Fills at bar j's open, then its stop-loss / take-profit; marks it at its close."""
        self.sim._open_and_intrabar(self.ticker, j, self.ts_ns[j])

    def close_bar(self, j: int, direction: int = 0, confidence: float = 0.0) -> RiskDecision | None:
        """Bar j's close: mark, day roll, ``on_mark``, then an entry request (direction +1/-1
        with the model's probability of that side) through ``RiskEngine.decide``."""
        t = self.ticker
        self.engine.last = None
        if direction:
            t.signal[j] = _BUY if direction > 0 else _SELL
            t.confidence[j] = confidence
            t.route[j] = 0  # ask decide()
        self.sim._close(self.ts_ns[j], ((0, j),))
        return self.engine.last

    def exit(self, j: int) -> RiskDecision | None:
        """After ``close_bar(j)``: close the whole position at the next open (reduce-only,
        checked by the engine). None when there is nothing to close or a close is pending."""
        qty = self.slot.qty
        if qty == 0.0 or any(o.reduce_only for o, _ in self.ticker.pending):
            return None
        t, now = self.ticker, self.ticker.close_dt[j]
        order = Order(
            client_order_id=f"{t.symbol}-{to_ns(now) // 1_000_000}-X",
            symbol=t.symbol,
            side=Side.SELL if qty > 0 else Side.BUY,
            qty=abs(qty),
            ts=now,
            reduce_only=True,
        )
        market = MarketSnapshot(t.symbol, now, t.close[j], _finite_or_nan(t.atr[j]), t.asset_class)
        decision = self.engine.check_order(order, market, self.sim._account())
        self.sim.decisions[decision.action] += 1
        if decision.orders:
            self.sim._queue(decision.orders, "agent_exit")
        return decision

    # ------------------------------------------------------------------ state

    @property
    def equity(self) -> float:
        return self.sim.pf.mark_to_market()[0]

    @property
    def position(self) -> float:
        return self.slot.qty

    @property
    def avg_price(self) -> float:
        return self.slot.avg_price

    @property
    def day_open_equity(self) -> float:
        return self.sim.day_open_equity

    @property
    def state(self) -> RiskState:
        return self.engine.state

    @property
    def pending(self) -> bool:
        return bool(self.ticker.pending)

    def close_time(self, j: int) -> datetime:
        return self.ticker.close_dt[j]

    def result(self) -> BacktestResult:
        """The run so far as the backtest reports it (equity, trades, fills, counts)."""
        return self.sim.result()


def _finite_or_nan(x: float) -> float:
    return x if math.isfinite(x) else math.nan
