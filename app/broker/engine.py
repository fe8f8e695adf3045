"""The ExecutionEngine: one venue account's orders, fills, portfolio and reconciliation.

The order path is ``app.broker.order_flow``, the fill path ``app.broker.fill_flow``,
reconciliation ``app.broker.reconcile``; this module holds the state, the lifecycle, the
decisions' entry point and the risk engine's view (marks, day roll, snapshot).

Persistence: every change goes to the ``Journal``'s buffer; the broker is wrapped in a
``PersistedBroker`` that flushes that buffer (one transaction) before each venue call, so every
state change is stored before the next venue call while the changes between two calls cost one
write. ``flush()`` also runs at the end of each bar close (``TradingSession``), at the end of a
reconciliation and on ``stop``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from app.broker import reconcile as _reconcile
from app.broker.errors import BrokerError
from app.broker.fill_flow import FillFlow
from app.broker.journal import Journal
from app.broker.journal_log import JournalLog
from app.broker.order_flow import OrderFlow
from app.broker.order_state import OrderRecord
from app.broker.persisted import PersistedBroker
from app.broker.portfolio import Portfolio
from app.broker.protocol import Broker, MarketRules
from app.broker.roles import ROLE_OF_ACTION
from app.config import ExecutionSettings
from app.risk.calendar import next_trading_day_start
from app.risk.engine import RiskEngine
from app.risk.snapshots import PortfolioSnapshot
from app.store.base import TimeSeriesStore
from app.types import AssetClass, OrderStatus, RiskDecision, to_ns

_S = OrderStatus


class ExecutionNotReady(BrokerError):
    """An order arrived before the start-up reconciliation finished."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class ExecutionEngine(OrderFlow, FillFlow):
    """One venue account: orders, fills, portfolio, reconciliation. Plain asyncio, no Ray."""

    def __init__(
        self,
        broker: Broker,
        risk: RiskEngine,
        store: TimeSeriesStore,
        settings: ExecutionSettings | None = None,
        *,
        calendar: AssetClass = AssetClass.CRYPTO,
        initial_cash: float | None = None,
        symbols: Sequence[str] = (),
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        journal_log: str | Path | None = None,
    ) -> None:
        # journal_log: the write-ahead log in front of the store (app/broker/journal_log.py)
        self.journal = Journal(store, JournalLog(journal_log) if journal_log else None)
        self.broker = PersistedBroker(broker, self.journal)
        self.risk = risk
        self.settings = settings or ExecutionSettings()
        self.calendar = calendar
        self.initial_cash = float(initial_cash or self.settings.initial_cash)
        self.clock = clock
        self._sleep = sleep
        self.pf = Portfolio(cash=self.initial_cash)
        self.symbols = tuple(symbols)
        for symbol in self.symbols:  # slot order = the backtester's: equity sums in that order
            self.pf.slot(symbol)
        self.orders: dict[str, OrderRecord] = {}
        self.fill_ids: set[str] = set()
        self.cursor: str | None = None
        self.seq = 0
        self.ready = False
        self.rules: dict[str, MarketRules] = {}
        self.unresolved: dict[str, str] = {}  # client id -> symbol: outcome unknown
        self.warnings: list[str] = []
        self.reducing_reason: str | None = None
        self.last_reconcile: datetime | None = None
        self.equity = self.initial_cash
        self.day_open_equity = self.initial_cash
        self._prev_equity = self.initial_cash
        self._next_day_ns: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect, rebuild from the store, reconcile with the venue; then trading may start."""
        await self.broker.connect()
        state = self.journal.load()
        self.orders = dict(state.orders)
        for fill in state.fills:
            self._book(fill, self.orders.get(fill.client_order_id))
            self.fill_ids.add(fill.fill_id)
        self.seq = len(state.fills)
        self.cursor = state.cursor
        self.unresolved = {k: r.symbol for k, r in self.orders.items() if r.status is _S.UNKNOWN}
        for symbol in set(self.unresolved.values()):
            self.risk.set_symbol_reducing(symbol, "order_outcome_unknown")
        await _reconcile.reconcile(self)
        self.equity, _ = self.pf.mark_to_market()
        self.day_open_equity = self._prev_equity = self.equity
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        self.journal.close()
        await self.broker.close()

    def flush(self) -> None:
        """Store the changes since the last call (one write per table; the live loop calls
        this once per bar close); a no-op when there are none."""
        self.journal.sync()

    async def maybe_reconcile(self) -> bool:
        """Reconcile when the configured interval passed since the last run."""
        now = self.clock()
        every = self.settings.reconcile_every_min * 60.0
        if self.last_reconcile is not None and (now - self.last_reconcile).total_seconds() < every:
            return False
        await _reconcile.reconcile(self)
        return True

    # ------------------------------------------------------------------ decisions

    async def execute(self, decision: RiskDecision) -> list[OrderRecord]:
        """Send every order of an approved decision; returns their records."""
        if not isinstance(decision, RiskDecision):
            raise TypeError(f"execute takes a RiskDecision, got {type(decision).__name__}")
        if not self.ready:
            raise ExecutionNotReady("reconciliation has not finished: no order is sent before")
        role = ROLE_OF_ACTION.get(decision.action)
        if role is None or not decision.orders:
            return []
        return [await self.place(order, role) for order in decision.orders]

    # ------------------------------------------------------------------ the risk engine's view

    def mark(self, now: datetime) -> PortfolioSnapshot:
        """At a bar close: equity at the marks, the trading day's opening equity rolled exactly
        as the backtester rolls it; returns the snapshot for the risk engine."""
        equity, _ = self.pf.mark_to_market()
        now_ns = to_ns(now)
        if self._next_day_ns is None:
            self._next_day_ns = to_ns(next_trading_day_start(now, self.calendar))
        elif now_ns >= self._next_day_ns:
            self.day_open_equity = equity if now_ns == self._next_day_ns else self._prev_equity
            self._next_day_ns = to_ns(next_trading_day_start(now, self.calendar))
        self.equity = equity
        self._prev_equity = equity
        return self.snapshot()

    def snapshot(self) -> PortfolioSnapshot:
        pending = tuple(
            r.order
            for r in self.orders.values()
            if r.open and r.role in ("entry", "close", "flatten") and not r.external
        )
        return PortfolioSnapshot(
            self.equity,
            self.day_open_equity,
            dict(self.pf.positions()),
            pending,
            dict(self.pf.marks),
        )
