"""The ExecutionEngine: the one place an approved RiskDecision becomes venue calls.

- It takes ``RiskDecision``s only, tracks every order as an ``OrderRecord`` and writes each status
  change to the store BEFORE the next venue call (``app.broker.journal``).
- Submit: retries only the network family (``VenueUnavailable``) with bounded backoff; after one,
  it asks the venue for the client id before any resend. An id whose outcome stays unknown puts
  the risk engine in REDUCING for that symbol until a later lookup resolves it. ``OrderRejected``
  ends the order as REJECTED with the venue's words, never retried.
- Fills come from the venue (``fills_since`` with a stored cursor), are stored once per fill id,
  and are applied to the same ``Portfolio`` the backtester books on; ``snapshot()`` gives the risk
  engine its ``PortfolioSnapshot``.
- Brackets: native when ``capabilities.native_brackets`` (legs ``<id>-sl``/``<id>-tp``), else the
  engine places both exits when the entry fills and cancels the sibling when one fills.
- Reconciliation (``app.broker.reconcile``) runs on ``start`` and every N minutes; no order is
  sent before the first one finished.

It is the only module that reaches a broker adapter (through ``app.broker.factory``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from app.broker import reconcile as _reconcile
from app.broker.errors import BrokerError, OrderRejected, VenueUnavailable
from app.broker.journal import Journal
from app.broker.order_state import OrderRecord
from app.broker.portfolio import Portfolio
from app.broker.precision import apply_rules
from app.broker.protocol import Broker, MarketRules, VenueOrder
from app.config import ExecutionSettings
from app.risk.calendar import next_trading_day_start
from app.risk.engine import RiskEngine
from app.risk.snapshots import PortfolioSnapshot
from app.store.base import TimeSeriesStore
from app.types import (
    AssetClass,
    Bar,
    DecisionAction,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    RiskDecision,
    RiskState,
    Side,
    to_ns,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
_S = OrderStatus

ROLE_OF_ACTION = {
    DecisionAction.OPEN_LONG: "entry",
    DecisionAction.OPEN_SHORT: "entry",
    DecisionAction.CLOSE: "close",
    DecisionAction.FLATTEN_ALL: "flatten",
}
FILL_REASON = {
    "entry": "entry",
    "close": "signal_close",
    "flatten": "flatten",
    "sl": "stop_loss",
    "tp": "take_profit",
    "external": "external",
}
LEGS = ("sl", "tp")


class ExecutionNotReady(BrokerError):
    """An order arrived before the start-up reconciliation finished."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class ExecutionEngine:
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
    ) -> None:
        self.broker = broker
        self.risk = risk
        self.settings = settings or ExecutionSettings()
        self.journal = Journal(store)
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
        await self.broker.close()

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

    async def place(self, order: Order, role: str, parent: str = "") -> OrderRecord:
        known = self.orders.get(order.client_order_id)
        if known is not None:  # a decision delivered twice: the id is the idempotency key
            return known
        problem: str | None = None
        if order.reduce_only and role not in LEGS and not self.broker.capabilities.native_brackets:
            for leg in [r for r in self.orders.values() if r.open and r.role in LEGS]:
                if leg.symbol == order.symbol:  # emulated exits hold the balance: free it first
                    await self.cancel(leg, f"superseded_by:{order.client_order_id}")
        held = self.pf.qty(order.symbol)
        if order.reduce_only:
            if held == 0.0 or (held > 0) == (order.side is Side.BUY):
                problem = "reduce_only:nothing_to_reduce"
            elif order.qty > abs(held):
                order = replace(order, qty=abs(held))
        elif order.side is Side.SELL and held <= 0.0 and not self.broker.capabilities.shorting:
            problem = f"venue_cannot_short:{self.broker.name}"
        if problem is None:
            rules = await self._rules(order.symbol)
            order, problem = apply_rules(order, rules, self.pf.marks.get(order.symbol))
        rec = OrderRecord(order, role=role, parent=parent, updated=self.clock(), attempts=1)
        if problem is not None:
            log.warning("order %s refused before sending: %s", order.client_order_id, problem)
            rec = rec.moved(_S.REJECTED, self.clock(), message=problem)
            self._save(rec)
            return rec
        self._save(rec)
        if role == "entry" and self.broker.capabilities.native_brackets:
            for leg in self._leg_orders(rec):
                self._save(
                    OrderRecord(
                        leg,
                        role=leg.client_order_id[-2:],
                        parent=order.client_order_id,
                        updated=self.clock(),
                    )
                )
        return await self._send(rec)

    async def _send(self, rec: OrderRecord) -> OrderRecord:
        """Submit; after a network failure look the id up, resend only if the venue never saw it."""
        s = self.settings
        coid, symbol = rec.client_order_id, rec.symbol
        while True:  # rec.attempts counts this send; it is stored before the call
            try:
                vo = await self.broker.submit(rec.order)
            except OrderRejected as exc:
                rec = rec.moved(_S.REJECTED, self.clock(), message=str(exc))
                self._save(rec)
                return rec
            except VenueUnavailable as exc:
                log.warning("submit %s: %s; asking the venue for the id", coid, exc)
                rec = rec.moved(_S.UNKNOWN, self.clock(), message=str(exc))
                self._save(rec)
                await self._sleep(self._backoff(rec.attempts - 1, exc.retry_after_s))
                try:
                    found = await self.retry(lambda: self.broker.fetch_order(coid, symbol))
                except VenueUnavailable:
                    return self._unresolved(rec)
                if found is not None:
                    return self.apply_venue(rec, found)
                if rec.attempts > s.max_retries:
                    return self._unresolved(rec)
                rec = rec.updated_with(self.clock(), attempts=rec.attempts + 1)
                self._save(rec)
                continue  # the venue never received it: resending the same id is safe
            return self.apply_venue(rec, vo)

    def _unresolved(self, rec: OrderRecord) -> OrderRecord:
        log.error("order %s: outcome unknown; %s goes REDUCING", rec.client_order_id, rec.symbol)
        self.unresolved[rec.client_order_id] = rec.symbol
        self.risk.set_symbol_reducing(rec.symbol, f"order_outcome_unknown:{rec.client_order_id}")
        return rec

    def apply_venue(self, rec: OrderRecord, vo: VenueOrder) -> OrderRecord:
        """Adopt the venue's status for ``rec`` (a stale or illegal one is kept out)."""
        status = vo.status
        if rec.status.terminal or status is rec.status:
            new = rec.updated_with(
                self.clock(), venue_order_id=vo.venue_order_id or rec.venue_order_id
            )
        elif (
            status in (_S.PENDING_SUBMIT, _S.SUBMITTED, _S.UNKNOWN) and rec.status is not _S.UNKNOWN
        ):
            new = rec
        else:
            new = rec.moved(
                status,
                self.clock(),
                venue_order_id=vo.venue_order_id or rec.venue_order_id,
                message=vo.message or rec.message,
            )
        self._save(new)
        if new.client_order_id in self.unresolved and new.status is not _S.UNKNOWN:
            self._resolved(new.client_order_id)
        return new

    def _resolved(self, client_order_id: str) -> None:
        symbol = self.unresolved.pop(client_order_id)
        if symbol not in self.unresolved.values():
            self.risk.clear_symbol_reducing(symbol)
            log.info("order %s resolved; %s may enter again", client_order_id, symbol)

    # ------------------------------------------------------------------ fills

    async def on_bar(self, bar: Bar) -> None:
        """A closed bar from the feed: entries are cancelled when the risk state forbids them;
        the paper venue executes the bar; marks and fills are brought up to date."""
        if self.risk.state is not RiskState.ACTIVE:
            for rec in list(self.orders.values()):
                if rec.open and rec.role == "entry" and rec.symbol == bar.symbol:
                    await self.cancel(rec, "entries_blocked:" + self.risk.state.value)
        feed = getattr(self.broker, "on_bar", None)
        if feed is not None:
            await feed(bar)
        self.pf.marks[bar.symbol] = float(bar.close)
        await self.sync_fills()
        if feed is not None:
            for rec in list(self.orders.values()):
                if rec.open and rec.symbol == bar.symbol and rec.role not in LEGS:
                    await self.refresh(rec)

    async def sync_fills(self) -> int:
        """Book the venue's fills after the stored cursor; returns how many were new."""
        page = await self.retry(lambda: self.broker.fills_since(self.cursor))
        new = 0
        for fill in page.fills:
            new += await self._on_fill(fill, page.cursor)
        if page.cursor:
            self.cursor = page.cursor
        return new

    async def _on_fill(self, fill: Fill, cursor: str | None) -> int:
        fill_id = fill.fill_id or f"{fill.client_order_id}:{to_ns(fill.ts)}:{fill.qty!r}"
        if fill_id in self.fill_ids:
            return 0
        rec = self.orders.get(fill.client_order_id)
        if rec is None:
            msg = f"fill {fill_id} of unknown order {fill.client_order_id}: adopted as external"
            log.warning(msg)
            self.warnings.append(msg)
            order = Order(fill.client_order_id, fill.symbol, fill.side, fill.qty, fill.ts)
            rec = OrderRecord(order, role="external", external=True, updated=self.clock())
        held = self.pf.qty(fill.symbol)
        reason = FILL_REASON[rec.role]
        if rec.role == "entry" and held != 0.0 and (held > 0) != (fill.side is Side.BUY):
            reason = "reversal"
        fill = replace(fill, reason=reason, fill_id=fill_id)
        self.journal.write_fill(fill, self.seq, cursor)  # stored before it changes anything
        self.seq += 1
        self.fill_ids.add(fill_id)
        self._book(fill, rec)
        done = rec.filled_qty + fill.qty
        avg = (
            fill.price
            if not rec.avg_fill_price
            else ((rec.avg_fill_price * rec.filled_qty + fill.price * fill.qty) / done)
        )
        status = _S.FILLED if done >= rec.order.qty * (1 - 1e-9) else _S.PARTIALLY_FILLED
        if rec.status.terminal:
            rec = rec.updated_with(self.clock(), filled_qty=done, avg_fill_price=avg)
        else:
            rec = rec.moved(status, self.clock(), filled_qty=done, avg_fill_price=avg)
        self._save(rec)
        await self._after_fill(rec)
        return 1

    def _book(self, fill: Fill, rec: OrderRecord | None) -> None:
        """Apply one fill to the portfolio, as the backtester books its own."""
        entry = rec is not None and rec.role == "entry"
        sl = rec.order.stop_loss if entry and rec.order.stop_loss is not None else math.nan
        tp = rec.order.take_profit if entry and rec.order.take_profit is not None else math.nan
        self.pf.marks.setdefault(fill.symbol, fill.price)
        self.pf.apply_fill(
            ts_ns=to_ns(fill.ts),
            symbol=fill.symbol,
            signed_qty=fill.side.sign * fill.qty,
            ref_price=fill.price,
            slippage=0.0,
            price=fill.price,
            fee=fill.fee,
            fee_rate=0.0,
            reason=fill.reason,
            client_order_id=fill.client_order_id,
            stop_loss=sl,
            take_profit=tp,
        )

    async def _after_fill(self, rec: OrderRecord) -> None:
        """Brackets: emulated exits when an entry fills; a filled leg cancels its sibling; a flat
        position cancels whatever legs are left."""
        native = self.broker.capabilities.native_brackets
        if rec.role == "entry" and rec.status is _S.FILLED and not native:
            for leg in self._leg_orders(rec):
                await self.place(leg, leg.client_order_id[-2:], rec.client_order_id)
        if rec.role in LEGS and rec.status is _S.FILLED:
            sibling = self.orders.get(f"{rec.parent}-{'tp' if rec.role == 'sl' else 'sl'}")
            if sibling is not None and sibling.open:
                await self.cancel(sibling, "oco:sibling_filled")
        if self.pf.qty(rec.symbol) == 0.0:
            for other in list(self.orders.values()):
                if other.open and other.role in LEGS and other.symbol == rec.symbol:
                    await self.cancel(other, "position_flat")

    def _leg_orders(self, rec: OrderRecord) -> list[Order]:
        o = rec.order
        if o.stop_loss is None or o.take_profit is None:
            return []
        qty = rec.filled_qty if rec.filled_qty > 0 else o.qty
        side = Side.SELL if o.side is Side.BUY else Side.BUY
        coid = o.client_order_id
        ts = self.clock() if rec.filled_qty > 0 else o.ts
        return [
            Order(
                f"{coid}-sl",
                o.symbol,
                side,
                qty,
                ts,
                OrderType.STOP,
                stop_price=o.stop_loss,
                reduce_only=True,
            ),
            Order(
                f"{coid}-tp",
                o.symbol,
                side,
                qty,
                ts,
                OrderType.LIMIT,
                limit_price=o.take_profit,
                reduce_only=True,
            ),
        ]

    # ------------------------------------------------------------------ cancels and lookups

    async def cancel(self, rec: OrderRecord, why: str) -> OrderRecord:
        try:
            vo = await self.retry(lambda: self.broker.cancel(rec.client_order_id, rec.symbol))
        except VenueUnavailable:
            return rec  # still open here; the next reconciliation asks again
        rec = self.orders[rec.client_order_id]
        if vo is None:
            if rec.status in (_S.PENDING_SUBMIT, _S.UNKNOWN):
                return rec
            vo = VenueOrder(
                rec.client_order_id,
                rec.symbol,
                rec.order.side,
                rec.order.qty,
                _S.CANCELED,
                message=why,
            )
        return self.apply_venue(rec, replace(vo, message=vo.message or why))

    async def refresh(self, rec: OrderRecord) -> OrderRecord:
        """The venue's status of one order (a targeted query)."""
        vo = await self.retry(lambda: self.broker.fetch_order(rec.client_order_id, rec.symbol))
        if vo is None:
            return rec
        return self.apply_venue(self.orders[rec.client_order_id], vo)

    async def retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` with bounded backoff on the network family only."""
        s = self.settings
        for attempt in range(s.max_retries + 1):
            try:
                return await call()
            except VenueUnavailable as exc:
                if attempt == s.max_retries:
                    raise
                await self._sleep(self._backoff(attempt, exc.retry_after_s))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        s = self.settings
        delay = min(s.max_backoff_s, s.backoff_s * 2.0**attempt)
        return max(delay, retry_after_s or 0.0)

    async def _rules(self, symbol: str) -> MarketRules:
        if symbol not in self.rules:
            self.rules[symbol] = await self.retry(lambda: self.broker.market_rules(symbol))
        return self.rules[symbol]

    def _save(self, rec: OrderRecord) -> None:
        self.orders[rec.client_order_id] = rec
        self.journal.write_order(rec)

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


# --------------------------------------------------------------------------- read-only status


async def venue_status(
    venue: str, settings, env, *, testnet: bool = False, venue_url: str = ""
) -> dict:
    """Connect read-only and report connectivity, balances, open orders and positions.

    BrokerConnectError / MissingCredentials propagate for the CLI to turn into one line."""
    from app.broker.factory import make_broker

    broker = make_broker(venue, settings, env, testnet=testnet, venue_url=venue_url)
    try:
        await broker.connect()
        balances = await broker.balances()
        orders = await broker.open_orders(None)
        positions = await broker.positions()
    finally:
        await broker.close()
    return {
        "venue": venue,
        "connected": True,
        "balances": balances,
        "open_orders": [
            {
                "client_order_id": o.client_order_id,
                "symbol": o.symbol,
                "side": o.side.value,
                "qty": o.qty,
                "status": o.status.value,
                "type": o.type.value,
            }
            for o in orders
        ],
        "positions": {s: {"qty": p.qty, "avg_price": p.avg_price} for s, p in positions.items()},
    }


def open_engine(
    venue: str,
    settings,
    env,
    risk: RiskEngine,
    store: TimeSeriesStore,
    *,
    calendar: AssetClass,
    clock: Callable[[], datetime] = utc_now,
    live: bool = False,
    testnet: bool = False,
    venue_url: str = "",
    asset_classes=None,
    state_path=None,
    initial_cash: float | None = None,
) -> ExecutionEngine:
    """The ExecutionEngine of ``venue`` (the live worker's way in: it never builds an adapter
    itself). Paper takes the replay's tickers, state file and cash (see ``make_broker``)."""
    from app.broker.factory import make_broker, require_live_allowed

    require_live_allowed(venue, live, env)
    broker = make_broker(
        venue, settings, env, testnet=testnet, venue_url=venue_url,
        asset_classes=asset_classes, state_path=state_path, initial_cash=initial_cash,
    )  # fmt: skip
    return ExecutionEngine(
        broker, risk, store, settings.execution, calendar=calendar,
        initial_cash=initial_cash, symbols=tuple(asset_classes or ()), clock=clock,
    )  # fmt: skip
