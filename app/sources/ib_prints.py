"""IB tick-by-tick ``AllLast`` prints (ib_async ``TickByTickAllLast``, and the
``HistoricalTickLast`` of ``reqHistoricalTicks(..., "TRADES")``) -> ``TradePrint``.

``reqTickByTickData(contract, "AllLast")`` delivers every print with its price, size (shares)
and attributes; ib_async stamps a live tick with the time its TCP read arrived (UTC,
``wrapper.lastTime``; TWS's whole-second time field is not kept), a historical tick with IB's
exchange second. A print flagged ``unreported`` (not reported to the consolidated tape: not a
public print) is dropped and counted; ``pastLimit`` prints are kept.
The prints then go through ``print_events`` like every other print source.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ib_async.objects import HistoricalTickLast

from app.sources.trade_prints import TradePrint

ALL_LAST_TICK_TYPES = (1, 2)  # Last, AllLast


def ib_tick_print(symbol: str, tick: Any) -> TradePrint | str:
    """A TickByTickAllLast (or HistoricalTickLast) -> TradePrint, or the reason it is not one."""
    last = isinstance(tick, HistoricalTickLast)  # a TRADES tick has no tickType: a Last print
    if not last and getattr(tick, "tickType", None) not in ALL_LAST_TICK_TYPES:
        return "not_a_last_tick"
    attrib = getattr(tick, "tickAttribLast", None)
    if attrib is not None and getattr(attrib, "unreported", False):
        return "unreported"
    when = tick.time
    if not isinstance(when, datetime) or when.tzinfo is None:
        return "naive_time"
    price, size = float(tick.price), float(tick.size)
    if not (math.isfinite(price) and price > 0 and math.isfinite(size) and size > 0):
        return "bad_price_or_size"
    return TradePrint(symbol, when.astimezone(UTC), price, size)


def ib_tick_prints(symbol: str, ticks: Iterable[Any]) -> tuple[list[TradePrint], Counter[str]]:
    """The prints among ``ticks`` (e.g. ``ticker.tickByTicks``) and the others by reason."""
    prints: list[TradePrint] = []
    rejected: Counter[str] = Counter()
    for tick in ticks:
        made = ib_tick_print(symbol, tick)
        if isinstance(made, str):
            rejected[made] += 1
        else:
            prints.append(made)
    return prints, rejected
