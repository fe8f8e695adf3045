"""A venue's lot size, tick and minimums applied to an approved order, rounding the safe way.

Safe means never more risk than the risk engine approved: quantities round DOWN to the lot step;
a long's stop-loss rounds UP (closer to the entry) and its take-profit DOWN (mirrored for a
short); a buy limit rounds down and a sell limit up. An order under the venue's minimum
quantity or notional is refused here, before sending, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from app.broker.protocol import MarketRules
from app.types import Order, Side


def to_step(value: float, step: float | None, up: bool) -> float:
    """``value`` rounded to a multiple of ``step`` (None or 0: unchanged), exact in decimal."""
    if not step or value is None:
        return value
    d_step = Decimal(repr(step))
    units = (Decimal(repr(value)) / d_step).to_integral_value(ROUND_CEILING if up else ROUND_FLOOR)
    return float(units * d_step)


def apply_rules(order: Order, rules: MarketRules, price: float | None) -> tuple[Order, str | None]:
    """``(rounded order, None)``, or ``(order, reason)`` when the venue would refuse it.

    ``price`` is the reference for a market order's notional (the last mark); None skips the
    notional check."""
    long_entry = order.side is Side.BUY
    qty = to_step(order.qty, rules.qty_step, up=False)
    if not qty > 0.0:
        return order, f"below_lot_step:{order.qty:g}<{rules.qty_step:g}"
    if rules.min_qty is not None and qty < rules.min_qty:
        return order, f"below_min_qty:{qty:g}<{rules.min_qty:g}"
    tick = rules.price_step
    exit_long = order.side is Side.SELL  # a sell exits a long (or opens a short)
    changes: dict[str, object] = {"qty": qty}
    if order.stop_loss is not None:  # on an entry: long SL up, short SL down
        changes["stop_loss"] = to_step(order.stop_loss, tick, up=long_entry)
    if order.take_profit is not None:
        changes["take_profit"] = to_step(order.take_profit, tick, up=not long_entry)
    if order.limit_price is not None:  # buy limit down, sell limit up
        changes["limit_price"] = to_step(order.limit_price, tick, up=exit_long)
    if order.stop_price is not None:  # a sell stop protects a long: up; a buy stop: down
        changes["stop_price"] = to_step(order.stop_price, tick, up=exit_long)
    rounded = replace(order, **changes)  # type: ignore[arg-type]
    ref = rounded.limit_price or rounded.stop_price or price
    if rules.min_notional is not None and ref is not None and math.isfinite(ref):
        notional = qty * ref
        if notional < rules.min_notional:
            return order, f"below_min_notional:{notional:g}<{rules.min_notional:g}"
    return rounded, None
