"""Pure rule functions of the risk engine: stops, exposure, drawdown, entry checks.

Each returns plain numbers or a short reason string; the engine strings them together. Nothing
here keeps state, so each rule is tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from app.risk.limits import Limits
from app.risk.snapshots import PortfolioSnapshot
from app.types import Order


def stop_levels(
    direction: int, price: float, atr: float, limits: Limits
) -> tuple[float, float, float] | str:
    """``(stop_loss, take_profit, stop_distance)`` for an entry at ``price``, or a refusal reason.

    ``direction`` is +1 for a long, -1 for a short. Long: SL < price < TP; short: TP < price < SL.
    ATR mode needs a finite positive ATR; a level that would be <= 0 or equal to the price (a
    distance below float resolution) is refused rather than bent into shape.
    """
    if limits.stop_mode_atr:
        if not 0.0 < atr < math.inf:
            return "no_atr:stop_mode=atr"
        sl_dist = limits.stop_loss_atr * atr
        tp_dist = limits.take_profit_atr * atr
    else:
        sl_dist = limits.stop_loss_pct * price
        tp_dist = limits.take_profit_pct * price
    if direction > 0:
        stop_loss, take_profit = price - sl_dist, price + tp_dist
        if stop_loss <= 0.0:
            return "stop_loss_nonpositive"
        if not stop_loss < price < take_profit:
            return "stop_too_close"
    else:
        stop_loss, take_profit = price + sl_dist, price - tp_dist
        if take_profit <= 0.0:
            return "take_profit_nonpositive"
        if not take_profit < price < stop_loss:
            return "stop_too_close"
    if not stop_loss < math.inf:
        return "stop_loss_nonfinite"
    return stop_loss, take_profit, sl_dist


def drawdown_breached(portfolio: PortfolioSnapshot, limits: Limits) -> bool:
    """True when mark-to-market equity fell more than the limit below the day's opening equity."""
    return equity_breaches_drawdown(portfolio.equity, portfolio.day_open_equity, limits)


def equity_breaches_drawdown(equity: float, day_open_equity: float, limits: Limits) -> bool:
    """The drawdown rule on plain numbers (the backtester asks before building a snapshot)."""
    return equity < day_open_equity * limits.drawdown_floor


def drawdown_reason(portfolio: PortfolioSnapshot, limits: Limits) -> str:
    loss = 1.0 - portfolio.equity / portfolio.day_open_equity
    return f"daily_drawdown:{loss:.2%}>{limits.max_daily_drawdown:.2%}"


def order_price_bound(order: Order, prices: Mapping[str, float] | None) -> float:
    """A price to value a pending order at: the caller's mark, else an upper bound from its levels.

    An entry's price lies between its stop-loss and take-profit, so the larger of the two bounds
    it from above; counting pending entries at that bound keeps the gross cap conservative.
    """
    if prices is not None and order.symbol in prices:
        return prices[order.symbol]
    levels = [
        v
        for v in (order.stop_loss, order.take_profit, order.limit_price, order.stop_price)
        if v is not None
    ]
    return max(levels) if levels else 0.0


def gross_exposure(portfolio: PortfolioSnapshot, symbol: str, last_price: float) -> float:
    """Sum of |notional| of positions and pending entry orders (reduce-only orders excluded).

    ``symbol`` is marked at ``last_price``; others at ``portfolio.prices`` when given, else at
    their average price (positions) or their price bound (orders).
    """
    prices = portfolio.prices
    total = 0.0
    for sym, pos in portfolio.positions.items():
        if sym == symbol:
            mark = last_price
        elif prices is not None and sym in prices:
            mark = prices[sym]
        else:
            mark = pos.avg_price
        total += abs(pos.qty) * mark
    for order in portfolio.open_orders:
        if not order.reduce_only:
            price = last_price if order.symbol == symbol else order_price_bound(order, prices)
            total += order.qty * price
    return total


def occupied_symbols(portfolio: PortfolioSnapshot) -> set[str]:
    """Symbols that hold a position or a pending entry: each takes one open-position slot."""
    symbols = set(portfolio.positions)
    symbols.update(o.symbol for o in portfolio.open_orders if not o.reduce_only)
    return symbols


def band_deviation(price: float, reference: float) -> float:
    """|price / reference - 1|: how far the market moved from the price an order refers to."""
    return abs(price / reference - 1.0)


# The entry checks both ``decide`` and ``check_order`` make: one reason string each, built here.


def price_band_problem(price: float, reference: float | None, limits: Limits) -> str | None:
    """The refusal when ``price`` moved beyond the band from ``reference`` (None: no reference)."""
    if reference is None:
        return None
    deviation = band_deviation(price, reference)
    if deviation > limits.price_band:
        return f"price_band:{deviation:.2%}>{limits.price_band:.2%}"
    return None


def rate_limit_problem(recent: int, limits: Limits) -> str | None:
    """The refusal when ``recent`` orders in the rolling minute already reach the limit."""
    if recent >= limits.max_orders_per_minute:
        return f"rate_limited:{recent}>={limits.max_orders_per_minute}/min"
    return None


def open_positions_problem(symbol: str, occupied: Collection[str], limits: Limits) -> str | None:
    """The refusal when an entry in ``symbol`` would take a slot beyond the open-position cap.

    ``occupied``: the symbols holding a slot (``occupied_symbols``, or the positions alone when
    no order is pending); a symbol already among them takes no new slot.
    """
    if symbol in occupied or len(occupied) < limits.max_open_positions:
        return None
    return f"capped:max_open_positions:{len(occupied)}>={limits.max_open_positions}"
