"""The fill path of the ExecutionEngine: a closed bar, the venue's fills after the stored cursor,
booking on the backtester's ``Portfolio``, and the brackets a fill opens or closes.

A mixin of ``app.broker.engine.ExecutionEngine``: it uses the engine's state, defines none.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from app.broker.order_state import OrderRecord
from app.broker.roles import FILL_REASON, LEGS
from app.types import Bar, Fill, Order, OrderStatus, OrderType, RiskState, Side, to_ns

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from app.broker.journal import Journal
    from app.broker.persisted import PersistedBroker
    from app.broker.portfolio import Portfolio
    from app.risk.engine import RiskEngine

log = logging.getLogger("app.broker.execution")
_S = OrderStatus


class FillFlow:
    """Fills: stored once per fill id, then booked, then the bracket consequences."""

    broker: PersistedBroker
    risk: RiskEngine
    journal: Journal
    pf: Portfolio
    orders: dict[str, OrderRecord]
    fill_ids: set[str]
    cursor: str | None
    seq: int
    warnings: list[str]
    clock: Callable[[], datetime]

    if TYPE_CHECKING:

        async def cancel(self, rec: OrderRecord, why: str) -> OrderRecord: ...
        async def refresh(self, rec: OrderRecord) -> OrderRecord: ...
        async def retry(self, call: Callable[[], Awaitable[object]]) -> object: ...
        async def place(self, order: Order, role: str, parent: str = "") -> OrderRecord: ...
        def _save(self, rec: OrderRecord) -> None: ...

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
