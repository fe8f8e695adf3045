"""The risk and execution stages of a bar close as plain classes (the Serve graph's hops).

``TradingSession`` runs model, risk and execution in one process with many small calls (one
``decide`` per ticker, one ``on_bar`` per bar). Across processes every call is a hop (~5-7 ms
on these machines), so the graph cuts a bar close into one call per stage:

1. ``ExecutionStage.on_bars``: ``ExecutionEngine.on_bar`` for each bar (the orders of the previous
   close fill at this open, stops inside the bar), then ``mark(now)``: the ``PortfolioSnapshot``;
2. the model (concurrently with 1: it reads only the windows);
3. ``RiskStage.decide_bar``: ``on_mark`` (the daily drawdown flatten), then ``decide`` for every
   signal in bar order, each seeing the orders approved before it as pending: what
   ``ExecutionEngine.snapshot`` shows after sending them, and what the backtester shows;
4. ``ExecutionStage.execute``: the approved orders, in decision order.

The risk engine lives in ``RiskStage`` alone. The execution engine reads the risk state (it
cancels open entries when not ACTIVE) and flags symbols whose order outcome is unknown; it works
on a mirror rebuilt from the ``RiskStatus`` each call carries, and what it changed there travels
back as ``RiskChanges`` with the next risk request. Everything here is frozen and picklable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from app.broker.execution import ExecutionEngine
from app.broker.order_state import OrderRecord
from app.config import RiskSettings
from app.live.session import _fill_of
from app.risk.engine import RiskEngine
from app.risk.snapshots import MarketSnapshot, PortfolioSnapshot
from app.types import (
    AssetClass,
    Bar,
    DecisionAction,
    Fill,
    Order,
    RiskDecision,
    RiskState,
    Signal,
)

COMMANDS = ("halt", "resume", "reducing")


@dataclass(frozen=True, slots=True)
class RiskStatus:
    """The risk engine as a value: ``RiskEngine.to_state()`` (JSON) and the symbols in
    exits-only mode (which ``to_state`` leaves to the execution engine)."""

    state: RiskState
    state_json: str
    symbols_reducing: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, engine: RiskEngine) -> RiskStatus:
        saved = json.dumps(engine.to_state(), default=str, sort_keys=True)
        return cls(engine.state, saved, tuple(sorted(engine.symbols_reducing.items())))

    def engine(self, settings: RiskSettings) -> RiskEngine:
        """A copy of the engine this status was taken from."""
        engine = RiskEngine.from_state(settings, json.loads(self.state_json))
        for symbol, reason in self.symbols_reducing:
            engine.set_symbol_reducing(symbol, reason)
        return engine


@dataclass(frozen=True, slots=True)
class RiskChanges:
    """What the execution engine did to its risk mirror: REDUCING switched on (a
    reconciliation mismatch) and the full map of symbols it holds in exits-only mode."""

    reducing_on: bool
    symbols_reducing: tuple[tuple[str, str], ...]

    def merged(self, later: RiskChanges | None) -> RiskChanges:
        if later is None:
            return self
        return RiskChanges(self.reducing_on or later.reducing_on, later.symbols_reducing)


@dataclass(frozen=True, slots=True)
class RiskCommand:
    """An operator command (``POST /v1/risk/...``): halt (with a reason), resume, reducing."""

    kind: str
    reason: str = ""
    on: bool = False

    def __post_init__(self) -> None:
        if self.kind not in COMMANDS:
            raise ValueError(f"RiskCommand.kind={self.kind!r}: expected one of {COMMANDS}")


@dataclass(frozen=True, slots=True)
class RiskRequest:
    """One bar close for the risk stage. ``signals``, ``markets`` and ``blocked`` are aligned,
    in bar order; ``blocked[i]``: why signal i may open nothing (stale, its feed REDUCING)."""

    now: datetime  # the close of the bar
    calendar: AssetClass
    portfolio: PortfolioSnapshot  # marked at ``now``
    signals: tuple[Signal, ...]
    markets: tuple[MarketSnapshot, ...]
    blocked: tuple[tuple[str, ...], ...]
    changes: RiskChanges | None = None

    def __post_init__(self) -> None:
        n = len(self.signals)
        if len(self.markets) != n or len(self.blocked) != n:
            raise ValueError(
                f"RiskRequest: {n} signals, {len(self.markets)} markets, "
                f"{len(self.blocked)} blocked: must be aligned"
            )


@dataclass(frozen=True, slots=True)
class RiskReply:
    flatten: RiskDecision | None  # the daily drawdown / kill switch flatten, executed first
    decisions: tuple[RiskDecision, ...]  # aligned with the request's signals
    status: RiskStatus

    @property
    def ordered(self) -> tuple[RiskDecision, ...]:
        """Every decision in execution order: the flatten first."""
        return ((self.flatten,) if self.flatten is not None else ()) + self.decisions


def _pending(portfolio: PortfolioSnapshot, orders: tuple[Order, ...]) -> PortfolioSnapshot:
    return replace(portfolio, open_orders=portfolio.open_orders + orders) if orders else portfolio


class RiskStage:
    """The deterministic risk engine of one account; its state is written (atomically) after
    every bar's decisions and every command, and read back on construction."""

    def __init__(self, settings: RiskSettings, state_path: str | Path | None = None) -> None:
        self.settings = settings
        self.state_path = Path(state_path) if state_path else None
        if self.state_path is not None and self.state_path.exists():
            saved = json.loads(self.state_path.read_text())
            self.engine = RiskEngine.from_state(settings, saved)
        else:
            self.engine = RiskEngine(settings)

    def status(self) -> RiskStatus:
        return RiskStatus.of(self.engine)

    def decide_bar(self, req: RiskRequest) -> RiskReply:
        engine = self.engine
        if req.changes is not None:
            self._apply(req.changes)
        portfolio = req.portfolio
        flatten = engine.on_mark(portfolio, req.now, req.calendar)
        if flatten is not None:
            portfolio = _pending(portfolio, flatten.orders)
        decisions: list[RiskDecision] = []
        for signal, market, blocked in zip(req.signals, req.markets, req.blocked, strict=True):
            held = portfolio.positions.get(signal.ticker)
            if blocked and (held is None or held.qty == 0.0):
                decision = RiskDecision(
                    req.now, signal.ticker, DecisionAction.HOLD, engine.state, (), blocked
                )
            else:
                decision = engine.decide(signal, portfolio, market)
            portfolio = _pending(portfolio, decision.orders)
            decisions.append(decision)
        self._persist()
        return RiskReply(flatten, tuple(decisions), self.status())

    def command(self, cmd: RiskCommand) -> RiskStatus:
        if cmd.kind == "halt":
            self.engine.kill(cmd.reason)
        elif cmd.kind == "resume":
            self.engine.resume()
        else:
            self.engine.set_reducing(cmd.on)
        self._persist()
        return self.status()

    def _apply(self, changes: RiskChanges) -> None:
        if changes.reducing_on and self.engine.state is RiskState.ACTIVE:
            self.engine.set_reducing(True)
        wanted = dict(changes.symbols_reducing)
        for symbol in set(self.engine.symbols_reducing) - set(wanted):
            self.engine.clear_symbol_reducing(symbol)
        for symbol, reason in wanted.items():
            self.engine.set_symbol_reducing(symbol, reason)

    def _persist(self) -> None:
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.engine.to_state(), default=str))
        tmp.replace(self.state_path)


@dataclass(frozen=True, slots=True)
class ExecutionReply:
    snapshot: PortfolioSnapshot  # after the call
    orders: tuple[OrderRecord, ...]  # records of the orders sent by this call
    fills: tuple[Fill, ...]  # booked since the previous call
    changes: RiskChanges | None  # what the engine did to the risk state, when anything


class ExecutionStage:
    """The ``ExecutionEngine`` of one account behind the three calls of a bar close."""

    def __init__(
        self,
        engine: ExecutionEngine,
        settings: RiskSettings,
        *,
        fill_book: object | None = None,  # the paper venue's book: fills.csv rows with slippage
        on_time: Callable[[datetime], object] | None = None,  # a replay clock's advance_to
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.fill_book = fill_book
        self.on_time = on_time
        self.started = False
        self._n_fills = 0

    async def start(self, status: RiskStatus) -> ExecutionReply:
        """Reconcile with the venue (before any order); idempotent: later calls only answer
        the account's snapshot."""
        before = self._sync(status)
        await self._started()
        return self._reply(before, ())

    async def on_bars(
        self, bars: Sequence[Bar], now: datetime, status: RiskStatus
    ) -> ExecutionReply:
        before = self._sync(status)
        await self._started()
        if self.on_time is not None:
            self.on_time(now)
        for bar in bars:
            await self.engine.on_bar(bar)
        self.engine.mark(now)
        self.engine.flush()  # the bar's changes into the store (one write per table)
        return self._reply(before, ())

    async def execute(
        self, decisions: Sequence[RiskDecision], status: RiskStatus
    ) -> ExecutionReply:
        before = self._sync(status)
        await self._started()
        records: list[OrderRecord] = []
        for decision in decisions:
            records.extend(await self.engine.execute(decision))
        self.engine.flush()
        return self._reply(before, tuple(records))

    async def _started(self) -> None:
        """``ExecutionEngine.start`` once (and again on a new process after a crash)."""
        if not self.started:
            await self.engine.start()
            self.started = True
            self._n_fills = len(self.engine.pf.fills)

    async def stop(self) -> None:
        if self.started:
            await self.engine.stop()
            self.started = False

    def fill_rows(self) -> list[tuple]:
        """Fill rows in ``app.broker.portfolio.FILL_COLUMNS`` order (for fills.csv)."""
        book = self.fill_book if self.fill_book is not None else self.engine.pf
        return list(book.fills)  # type: ignore[attr-defined]

    def _sync(self, status: RiskStatus) -> RiskStatus:
        """The engine's risk mirror := ``status`` (its symbol flags kept: the engine owns them)."""
        own = dict(self.engine.risk.symbols_reducing)
        mirror = status.engine(self.settings)
        for symbol in set(mirror.symbols_reducing) - set(own):
            mirror.clear_symbol_reducing(symbol)
        for symbol, reason in own.items():
            mirror.set_symbol_reducing(symbol, reason)
        self.engine.risk = mirror
        return RiskStatus.of(mirror)

    def _reply(self, before: RiskStatus, records: tuple[OrderRecord, ...]) -> ExecutionReply:
        rows = self.engine.pf.fills
        fills = tuple(_fill_of(r) for r in rows[self._n_fills :])
        self._n_fills = len(rows)
        after = RiskStatus.of(self.engine.risk)
        changes = None
        if after.state != before.state or after.symbols_reducing != before.symbols_reducing:
            reducing_on = before.state is RiskState.ACTIVE and after.state is RiskState.REDUCING
            changes = RiskChanges(reducing_on, after.symbols_reducing)
        return ExecutionReply(self.engine.snapshot(), records, fills, changes)
