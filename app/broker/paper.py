"""The paper venue: the backtest's fill model on live bars, with its state on disk.

``submit`` queues a market order; ``on_bar`` (beyond the Broker protocol: a live feed or a
replay calls it through the ExecutionEngine) fills the queue at the bar's open and checks the
position's stop-loss / take-profit inside the bar, with the SAME functions the backtester calls
(``app.broker.sim_fills``) and the causal Wilder ATR through the previous bar. So with the same
bars and orders its fills equal the backtester's, bit for bit.

Brackets are native: an entry's stop-loss / take-profit ride on the position (legs
``<id>-sl`` / ``<id>-tp``), exactly as in the backtest. Every state-changing call is appended
to a log beside ``state_path`` before it returns, with a snapshot every few thousand calls and
on close (``app.broker.paper_state``), so a restart continues where the last answer left off.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from app.broker import paper_state as ps
from app.broker.errors import OrderRejected
from app.broker.fill_model import ATR_PERIOD, FillModel, RunningATR
from app.broker.portfolio import Portfolio, _Slot
from app.broker.protocol import FillsPage, MarketRules, VenueCapabilities, VenueOrder
from app.broker.sim_fills import fill_intrabar_exit, fill_pending
from app.config import CostSettings
from app.types import (
    AssetClass,
    Bar,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    from_ns,
)

STATE_VERSION = ps.STATE_VERSION


class PaperBroker:
    """A simulated account; one instance per paper account (and state file)."""

    name = "paper"
    capabilities = VenueCapabilities(native_brackets=True, shorting=True)

    def __init__(
        self,
        asset_classes: Mapping[str, AssetClass],
        costs: CostSettings | None = None,
        *,
        initial_cash: float = 100_000.0,
        state_path: str | Path | None = None,
        quote_currency: str = "USD",
        atr_period: int = ATR_PERIOD,
        snapshot_every: int = ps.SNAPSHOT_EVERY,
    ) -> None:
        costs = costs or CostSettings()
        self.asset_classes = dict(asset_classes)
        self.fill_models = {s: FillModel.from_costs(costs, c) for s, c in asset_classes.items()}
        self.state_path = Path(state_path) if state_path is not None else None
        self.quote_currency = quote_currency
        self.atr_period = atr_period
        self.pf = Portfolio(cash=float(initial_cash))
        self.pending: dict[str, list[tuple[Order, str]]] = {}
        self.orders: dict[str, VenueOrder] = {}
        self.parents: dict[str, str] = {}  # symbol -> entry id whose levels ride on the position
        self.history: dict[str, list[list[float]]] = {}  # symbol -> [highs, lows, closes]
        self.fills: list[Fill] = []
        self.skipped: Counter = Counter()
        self.connected = False
        self._atr: dict[str, RunningATR] = {}  # symbol -> ATR through the last bar of history
        self._log = ps.StateLog(self.state_path, snapshot_every) if self.state_path else None
        if self._log is not None:
            state, ops = self._log.load()
            if state is not None:
                self._restore(state)
            for op in ops:  # the calls after the snapshot, replayed: the venue is deterministic
                self._apply(op)

    # ------------------------------------------------------------------ protocol

    async def connect(self) -> None:
        self.connected = True

    async def close(self) -> None:
        self.connected = False
        if self._log is not None:
            if self._log.since_snapshot:
                self._log.snapshot(self._state())
            self._log.close()

    async def submit(self, order: Order) -> VenueOrder:
        known = self.orders.get(order.client_order_id)
        vo = self._submit(order)
        if known is None:
            self._record({"op": "submit", "order": ps.order_json(order)})
        return vo

    def _submit(self, order: Order) -> VenueOrder:
        known = self.orders.get(order.client_order_id)
        if known is not None:  # a resend of a known id: the venue answers with the order
            return known
        if order.symbol not in self.fill_models:
            raise OrderRejected(
                f"unknown symbol {order.symbol!r} (paper account trades {sorted(self.fill_models)})"
            )
        if order.type is not OrderType.MARKET:
            raise OrderRejected(f"paper venue takes MARKET orders only, got {order.type.value}")
        reason = "signal_close" if order.reduce_only else "entry"
        self.pending.setdefault(order.symbol, []).append((order, reason))
        vo = VenueOrder(
            order.client_order_id,
            order.symbol,
            order.side,
            order.qty,
            OrderStatus.ACCEPTED,
            type=order.type,
            venue_order_id=f"paper-{len(self.orders) + 1}",
            ts=order.ts,
        )
        self.orders[order.client_order_id] = vo
        return vo

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        before = self.orders.get(client_order_id)
        vo = self._cancel(client_order_id, symbol)
        if vo is not None and vo is not before and self.orders.get(client_order_id) is vo:
            self._record({"op": "cancel", "id": client_order_id, "symbol": symbol})
        return vo

    def _cancel(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        leg = self._leg(client_order_id, symbol)
        if leg is not None:  # a bracket leg rides on the position; it goes when the position goes
            return leg
        vo = self.orders.get(client_order_id)
        if vo is None:
            return None
        if vo.status.terminal:
            return vo
        queue = self.pending.get(symbol, [])
        queue[:] = [(o, r) for o, r in queue if o.client_order_id != client_order_id]
        vo = _replace(vo, status=OrderStatus.CANCELED, message="canceled")
        self.orders[client_order_id] = vo
        return vo

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        return self._leg(client_order_id, symbol) or self.orders.get(client_order_id)

    async def open_orders(self, symbols: Sequence[str] | None = None) -> list[VenueOrder]:
        out = [v for v in self.orders.values() if not v.status.terminal]
        for sym, parent in self.parents.items():
            for tag in ("sl", "tp"):
                leg = self._leg(f"{parent}-{tag}", sym)
                if leg is not None and leg.status is OrderStatus.ACCEPTED:
                    out.append(leg)
        return [v for v in out if symbols is None or v.symbol in symbols]

    async def fills_since(
        self, cursor: str | None, symbols: Sequence[str] | None = None
    ) -> FillsPage:
        start = int(cursor) if cursor else 0
        page = [f for f in self.fills[start:] if symbols is None or f.symbol in symbols]
        return FillsPage(tuple(page), str(len(self.fills)))

    async def positions(self) -> dict[str, Position]:
        return dict(self.pf.positions())

    async def balances(self) -> dict[str, float]:
        return {self.quote_currency: self.pf.cash}

    async def market_rules(self, symbol: str) -> MarketRules:
        return MarketRules(symbol)  # no lot size or tick: paper = backtest, unrounded

    # ------------------------------------------------------------------ the bar feed

    async def on_bar(self, bar: Bar) -> list[Fill]:
        """Execute ``bar``: queued orders at its open, then the stop / take-profit inside it.
        Returns the fills it produced (they also appear in ``fills_since``)."""
        if bar.symbol not in self.fill_models:
            return []
        new = self._bar(bar)
        self._record({"op": "bar", "bar": ps.bar_json(bar)})
        return new

    def _bar(self, bar: Bar) -> list[Fill]:
        sym = bar.symbol
        fm = self.fill_models[sym]
        highs, lows, closes = self.history.setdefault(sym, [[], [], []])
        atr = self._atr.get(sym)
        if atr is None:
            atr = self._atr[sym] = RunningATR.over(highs, lows, closes, self.atr_period)
        atr_prev = atr.atr  # the causal ATR through the previous bar (NaN in the warm-up)
        ts_ns = bar.ts_ns
        n0 = len(self.pf.fills)
        queue = self.pending.get(sym, [])
        queued = [o for o, _ in queue]
        if queue:
            fill_pending(self.pf, sym, fm, queue, ts_ns, bar.open, atr_prev, self.skipped)
        filled = {row[3] for row in self.pf.fills[n0:]}
        for o in queued:
            if o.client_order_id in filled:
                if not o.reduce_only:
                    self.parents[sym] = o.client_order_id
            else:
                vo = self.orders[o.client_order_id]
                self.orders[o.client_order_id] = _replace(
                    vo, status=OrderStatus.EXPIRED, message="reduce_only:nothing_to_reduce"
                )
        if self.pf.qty(sym) != 0.0:
            fill_intrabar_exit(
                self.pf,
                sym,
                fm,
                ts_ns,
                (bar.open, bar.high, bar.low),
                atr_prev,
                self.parents.get(sym),
            )
        self.pf.marks[sym] = bar.close
        if self.pf.qty(sym) == 0.0:
            self.parents.pop(sym, None)
        highs.append(bar.high)
        lows.append(bar.low)
        closes.append(bar.close)
        atr.update(bar.high, bar.low, bar.close)
        new = [self._fill(row) for row in self.pf.fills[n0:]]
        self.fills.extend(new)
        for f in new:
            vo = self.orders.get(f.client_order_id)
            if vo is not None:
                self.orders[f.client_order_id] = _replace(
                    vo, status=OrderStatus.FILLED, filled_qty=f.qty, avg_fill_price=f.price, ts=f.ts
                )
        return new

    # ------------------------------------------------------------------ state on disk

    def _record(self, op: dict) -> None:
        """Log one state-changing call before it returns; snapshot when the log is long."""
        if self._log is None:
            return
        self._log.append(op)
        if self._log.due:
            self._log.snapshot(self._state())

    def _apply(self, op: dict) -> None:
        kind = op["op"]
        if kind == "submit":
            self._submit(ps.order_from(op["order"]))
        elif kind == "cancel":
            self._cancel(op["id"], op["symbol"])
        elif kind == "bar":
            self._bar(ps.bar_from(op["bar"]))
        else:
            raise ValueError(f"{self._log.ops_path if self._log else ''}: unknown op={kind!r}")

    # ------------------------------------------------------------------ helpers

    def _fill(self, row: tuple) -> Fill:
        seq, ts_ns, sym, coid, sign, qty, _ref, _slip, _rate, price, fee, reason = row
        return Fill(
            client_order_id=coid,
            symbol=sym,
            side=Side.BUY if sign > 0 else Side.SELL,
            qty=qty,
            price=price,
            fee=fee,
            ts=from_ns(ts_ns),
            reason=reason,
            fill_id=f"paper-{seq}",
        )

    def _leg(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """A bracket leg of the open position as an order (ACCEPTED while the position lives,
        FILLED when it closed the position, CANCELED otherwise)."""
        parent, _, tag = client_order_id.rpartition("-")
        if tag not in ("sl", "tp") or parent not in self.orders:
            return None
        entry = self.orders[parent]
        slot = self.pf.slots.get(symbol)
        fill = next((f for f in reversed(self.fills) if f.client_order_id == client_order_id), None)
        if fill is not None:
            status = OrderStatus.FILLED
        elif self.parents.get(symbol) == parent and slot is not None and slot.qty != 0.0:
            status = OrderStatus.ACCEPTED
        else:
            status = OrderStatus.CANCELED
        level = slot.stop_loss if slot is not None and tag == "sl" else math.nan
        if tag == "tp" and slot is not None:
            level = slot.take_profit
        return VenueOrder(
            client_order_id,
            symbol,
            Side.SELL if entry.side is Side.BUY else Side.BUY,
            fill.qty if fill is not None else (abs(slot.qty) if slot and slot.qty else entry.qty),
            status,
            filled_qty=fill.qty if fill is not None else 0.0,
            avg_fill_price=fill.price if fill is not None else None,
            type=OrderType.STOP if tag == "sl" else OrderType.LIMIT,
            stop_price=level if tag == "sl" and level == level else None,
            limit_price=level if tag == "tp" and level == level else None,
            venue_order_id=f"{entry.venue_order_id}-{tag}",
        )

    def _state(self) -> dict:
        pf = self.pf
        return {
            "cash": pf.cash,
            "slots": {s: asdict(v) for s, v in pf.slots.items()},
            "marks": pf.marks,
            "pf_fills": pf.fills,
            "trades": pf.trades,
            "traded_notional": pf.traded_notional,
            "fees_paid": pf.fees_paid,
            "pending": {s: [[ps.order_json(o), r] for o, r in q] for s, q in self.pending.items()},
            "orders": {k: ps.venue_json(v) for k, v in self.orders.items()},
            "parents": self.parents,
            "history": self.history,
            "fills": [ps.fill_json(f) for f in self.fills],
        }

    def _restore(self, state: dict) -> None:
        pf = self.pf
        pf.cash = state["cash"]
        pf.slots = {s: _Slot(**v) for s, v in state["slots"].items()}
        pf.marks = state["marks"]
        pf.fills = [tuple(r) for r in state["pf_fills"]]
        pf.trades = [tuple(r) for r in state["trades"]]
        pf.traded_notional = state["traded_notional"]
        pf.fees_paid = state["fees_paid"]
        self.pending = {
            s: [(ps.order_from(o), r) for o, r in q] for s, q in state["pending"].items()
        }
        self.orders = {k: ps.venue_from(v) for k, v in state["orders"].items()}
        self.parents = state["parents"]
        self.history = state["history"]
        self.fills = [ps.fill_from(f) for f in state["fills"]]
        self._atr = {}  # rebuilt from the history on each symbol's next bar


def _replace(vo: VenueOrder, **changes: object) -> VenueOrder:
    from dataclasses import replace

    return replace(vo, **changes)  # type: ignore[arg-type]
