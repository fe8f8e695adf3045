"""The order path of the ExecutionEngine: place, submit with lookups, adopt the venue's status,
cancel, refresh, and the bounded retry of the network family.

Every status change goes through ``_save`` (the journal); the journal is flushed by the
``PersistedBroker`` before the next venue call, so no call is made on an unpersisted change.
A mixin of ``app.broker.engine.ExecutionEngine``: it uses the engine's state, defines none.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from app.broker.errors import OrderRejected, VenueUnavailable
from app.broker.order_state import OrderRecord
from app.broker.precision import apply_rules
from app.broker.protocol import MarketRules, VenueOrder
from app.broker.roles import LEGS
from app.types import Order, OrderStatus, Side

if TYPE_CHECKING:
    from app.broker.journal import Journal
    from app.broker.persisted import PersistedBroker
    from app.broker.portfolio import Portfolio
    from app.config import ExecutionSettings
    from app.risk.engine import RiskEngine

log = logging.getLogger("app.broker.execution")
T = TypeVar("T")
_S = OrderStatus


class OrderFlow:
    """Orders: from an approved ``Order`` to the venue's final word on it."""

    broker: PersistedBroker
    risk: RiskEngine
    settings: ExecutionSettings
    journal: Journal
    pf: Portfolio
    orders: dict[str, OrderRecord]
    rules: dict[str, MarketRules]
    unresolved: dict[str, str]
    clock: Callable[[], datetime]
    _sleep: Callable[[float], Awaitable[None]]

    if TYPE_CHECKING:

        def _leg_orders(self, rec: OrderRecord) -> list[Order]: ...

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
