"""Cash, positions and the records of a simulated account (one account, many tickers).

Plain floats and small per-symbol slots, no frames: the backtester updates it per fill, and asks
for ``Position`` objects only when the risk engine needs a snapshot (cached until the next fill).

Accounting: ``cash`` moves by ``-signed_qty * price - fee`` on every fill (a short sale adds its
proceeds to cash); ``equity = cash + sum(qty * mark)``. A round trip is logged as a trade when a
position is reduced, closed or flipped; its ``pnl`` is net of the entry fees (pro rata to the
closed quantity) and the exit fee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from app.types import Position, from_ns

TRADE_COLUMNS: tuple[str, ...] = (
    "entry_ts",
    "exit_ts",
    "ticker",
    "side",
    "qty",
    "entry_price",
    "exit_price",
    "stop_loss",
    "take_profit",
    "exit_reason",
    "pnl",
    "fees",
)
FILL_COLUMNS: tuple[str, ...] = (
    "seq",
    "ts",
    "ticker",
    "client_order_id",
    "side",
    "qty",
    "ref_price",
    "slippage",
    "fee_rate",
    "price",
    "fee",
    "reason",
)


@dataclass(slots=True)
class _Slot:
    """The open position of one symbol (qty signed; 0 = flat)."""

    qty: float = 0.0
    avg_price: float = 0.0
    opened_ns: int = 0
    stop_loss: float = math.nan
    take_profit: float = math.nan
    entry_fees: float = 0.0  # entry fees not yet charged to a logged trade


@dataclass(slots=True)
class Portfolio:
    """The simulated account. ``marks`` holds the last price seen per symbol."""

    cash: float
    slots: dict[str, _Slot] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    trades: list[tuple] = field(default_factory=list)
    fills: list[tuple] = field(default_factory=list)
    traded_notional: float = 0.0
    fees_paid: float = 0.0
    _positions_cache: dict[str, Position] | None = None

    def qty(self, symbol: str) -> float:
        slot = self.slots.get(symbol)
        return slot.qty if slot is not None else 0.0

    def slot(self, symbol: str) -> _Slot:
        slot = self.slots.get(symbol)
        if slot is None:
            slot = self.slots[symbol] = _Slot()
        return slot

    def mark_to_market(self) -> tuple[float, bool]:
        """``(equity, any position open)``: equity is cash plus every open position at its last
        mark (the backtester asks every bar)."""
        value = self.cash
        exposed = False
        for symbol, slot in self.slots.items():
            if slot.qty != 0.0:
                value += slot.qty * self.marks[symbol]
                exposed = True
        return value, exposed

    def positions(self) -> dict[str, Position]:
        """Open positions as domain objects (rebuilt only after a fill changed them)."""
        if self._positions_cache is None:
            self._positions_cache = {
                sym: Position(
                    symbol=sym,
                    qty=s.qty,
                    avg_price=s.avg_price,
                    opened_at=from_ns(s.opened_ns),
                    stop_loss=None if math.isnan(s.stop_loss) else s.stop_loss,
                    take_profit=None if math.isnan(s.take_profit) else s.take_profit,
                )
                for sym, s in self.slots.items()
                if s.qty != 0.0
            }
        return self._positions_cache

    def apply_fill(
        self,
        *,
        ts_ns: int,
        symbol: str,
        signed_qty: float,
        ref_price: float,
        slippage: float,
        price: float,
        fee: float,
        fee_rate: float,
        reason: str,
        client_order_id: str = "",
        stop_loss: float = math.nan,
        take_profit: float = math.nan,
    ) -> None:
        """Book one fill: cash, position, fill log and, when a position shrinks, a trade.

        ``stop_loss``/``take_profit`` (NaN = none) attach to the position the fill opens or adds to.
        """
        self.cash -= signed_qty * price + fee
        self.traded_notional += abs(signed_qty) * price
        self.fees_paid += fee
        self.fills.append(
            (
                len(self.fills),
                ts_ns,
                symbol,
                client_order_id,
                1 if signed_qty > 0 else -1,
                abs(signed_qty),
                ref_price,
                slippage,
                fee_rate,
                price,
                fee,
                reason,
            )
        )
        self._positions_cache = None
        slot = self.slot(symbol)
        old = slot.qty
        if old == 0.0 or (old > 0) == (signed_qty > 0):  # open or add
            new = old + signed_qty
            slot.avg_price = (old * slot.avg_price + signed_qty * price) / new
            if old == 0.0:
                slot.opened_ns = ts_ns
            slot.qty = new
            slot.entry_fees += fee
            slot.stop_loss = stop_loss
            slot.take_profit = take_profit
            return
        closed = min(abs(signed_qty), abs(old))
        share = closed / abs(old)
        entry_fee = slot.entry_fees * share
        exit_fee = fee * closed / abs(signed_qty)
        direction = 1.0 if old > 0 else -1.0
        pnl = direction * closed * (price - slot.avg_price) - entry_fee - exit_fee
        self.trades.append(
            (
                slot.opened_ns,
                ts_ns,
                symbol,
                "LONG" if old > 0 else "SHORT",
                closed,
                slot.avg_price,
                price,
                slot.stop_loss,
                slot.take_profit,
                reason,
                pnl,
                entry_fee + exit_fee,
            )
        )
        slot.entry_fees -= entry_fee
        remaining = old + signed_qty
        if abs(remaining) <= 1e-12 * abs(old):  # closed (tolerate float dust)
            self.cash += remaining * price  # book dust at the fill price so the slot is truly flat
            slot.qty = 0.0
            slot.entry_fees = 0.0
            slot.stop_loss = slot.take_profit = math.nan
        elif (remaining > 0) == (old > 0):  # partly reduced: levels and avg price stay
            slot.qty = remaining
        else:  # flipped: the rest opens a new position at this fill
            slot.qty = remaining
            slot.avg_price = price
            slot.opened_ns = ts_ns
            slot.entry_fees = fee - exit_fee
            slot.stop_loss = stop_loss
            slot.take_profit = take_profit

    def open_trades(self, ts_ns: int) -> list[tuple]:
        """Open positions as trade rows valued at their mark (exit_reason ``open_at_end``)."""
        rows = []
        for sym, s in self.slots.items():
            if s.qty == 0.0:
                continue
            mark = self.marks[sym]
            pnl = s.qty * (mark - s.avg_price) - s.entry_fees
            rows.append(
                (
                    s.opened_ns,
                    ts_ns,
                    sym,
                    "LONG" if s.qty > 0 else "SHORT",
                    abs(s.qty),
                    s.avg_price,
                    mark,
                    s.stop_loss,
                    s.take_profit,
                    "open_at_end",
                    pnl,
                    s.entry_fees,
                )
            )
        return rows
