"""Simulated execution of one symbol's bar: queued orders at the open, then its stop / take-profit.

One implementation for the backtester (``app.backtest.engine``) and the paper broker
(``app.broker.paper``), so paper fills equal backtest fills on the same bars and orders: same
arithmetic, same order of operations, same float results.

The arithmetic itself is ``app.broker.fill_model``; these functions book its result on a
``Portfolio``. ``atr_prev`` is the causal Wilder ATR through the PREVIOUS bar (known at the open).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import MutableSequence

from app.broker.fill_model import FillModel, intrabar_exit
from app.broker.portfolio import Portfolio
from app.types import Order

EXIT_TAGS = {"stop_loss": "SL", "take_profit": "TP"}


def exit_order_id(symbol: str, ts_ns: int, reason: str) -> str:
    """Id of a simulated stop / take-profit exit: symbol, bar open ms, SL or TP."""
    return f"{symbol}-{ts_ns // 1_000_000}-{EXIT_TAGS[reason]}"


def fill_pending(
    pf: Portfolio,
    symbol: str,
    fm: FillModel,
    pending: MutableSequence[tuple[Order, str]],
    ts_ns: int,
    open_: float,
    atr_prev: float,
    skipped: Counter,
    entries_allowed: bool = True,
) -> None:
    """Fill every order queued for ``symbol`` at this bar's open, in decision order; clears
    ``pending``. ``reason`` of each queued pair is the fill reason (entry, signal_close, ...).

    An entry approved before a halt (or REDUCING) began is cancelled, not filled: a live
    broker would cancel it with the flatten, and the halt means no new exposure. A reduce-only
    order is clipped to the position, and skipped when there is nothing to reduce.
    """
    slot = pf.slot(symbol)
    for order, reason in pending:
        if not entries_allowed and not order.reduce_only:
            skipped[f"entry_cancelled:{reason}"] += 1
            continue
        sign = order.side.sign
        qty = order.qty
        held = slot.qty
        if order.reduce_only:
            if held == 0.0 or (held > 0) == (sign > 0):
                skipped[f"reduce_only_nothing_to_reduce:{reason}"] += 1
                continue
            qty = min(qty, abs(held))
        elif held != 0.0 and (held > 0) != (sign > 0):
            reason = "reversal"
        price, slip = fm.market_fill(sign, open_, atr_prev)
        pf.apply_fill(
            ts_ns=ts_ns,
            symbol=symbol,
            signed_qty=sign * qty,
            ref_price=open_,
            slippage=slip,
            price=price,
            fee=fm.fee(qty, price),
            fee_rate=fm.fee_rate,
            reason=reason,
            client_order_id=order.client_order_id,
            stop_loss=order.stop_loss if order.stop_loss is not None else math.nan,
            take_profit=order.take_profit if order.take_profit is not None else math.nan,
        )
    pending.clear()


def fill_intrabar_exit(
    pf: Portfolio,
    symbol: str,
    fm: FillModel,
    ts_ns: int,
    bar: tuple[float, float, float],
    atr_prev: float,
    bracket_parent: str | None = None,
) -> str | None:
    """Close the whole position of ``symbol`` when this bar (open, high, low) reaches its stop
    (a market order: slippage) or take-profit (a limit: none); returns the exit reason or None.
    The exit fill is named ``<bracket_parent>-sl`` / ``-tp`` (the Broker protocol's bracket
    legs) when the entry's id is given, else :func:`exit_order_id`."""
    slot = pf.slots.get(symbol)
    if slot is None or slot.qty == 0.0:
        return None
    held = slot.qty
    open_, high, low = bar
    hit = intrabar_exit(1 if held > 0 else -1, open_, high, low, slot.stop_loss, slot.take_profit)
    if hit is None:
        return None
    level, reason = hit
    sign = -1 if held > 0 else 1
    if reason == "stop_loss":
        price, slip = fm.market_fill(sign, level, atr_prev)
    else:
        price, slip = level, 0.0
    qty = abs(held)
    pf.apply_fill(
        ts_ns=ts_ns,
        symbol=symbol,
        signed_qty=sign * qty,
        ref_price=level,
        slippage=slip,
        price=price,
        fee=fm.fee(qty, price),
        fee_rate=fm.fee_rate,
        reason=reason,
        client_order_id=(
            f"{bracket_parent}-{EXIT_TAGS[reason].lower()}"
            if bracket_parent
            else exit_order_id(symbol, ts_ns, reason)
        ),
    )
    return reason
