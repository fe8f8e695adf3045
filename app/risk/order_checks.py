"""Checks of one order from outside the engine (``RiskEngine.check_order``), as pure functions:
its price band and brackets against the market, and the account caps it would break."""

from __future__ import annotations

from app.risk.limits import Limits
from app.risk.rules import (
    drawdown_breached,
    gross_exposure,
    occupied_symbols,
    open_positions_problem,
    price_band_problem,
)
from app.risk.snapshots import MarketSnapshot, PortfolioSnapshot
from app.types import Order, OrderType, Side


def bracket_problems(order: Order, market: MarketSnapshot, limits: Limits) -> list[str]:
    """The price band (limit / stop price, else the market's reference, vs the last price) and
    stop-loss / take-profit present and on the right side of the entry."""
    if order.type is OrderType.LIMIT:
        reference = order.limit_price
    elif order.type is OrderType.STOP:
        reference = order.stop_price
    else:
        reference = market.reference_price
    price = market.last_price
    problems: list[str] = []
    band_problem = price_band_problem(price, reference, limits)
    if band_problem is not None:
        problems.append(band_problem)
    entry = reference if reference is not None else price
    sl, tp = order.stop_loss, order.take_profit
    if sl is None:
        problems.append("missing_stop_loss")
    if tp is None:
        problems.append("missing_take_profit")
    long = order.side is Side.BUY
    if sl is not None and (sl >= entry if long else sl <= entry):
        problems.append(f"stop_loss_wrong_side:{sl:g}vs{entry:g}")
    if tp is not None and (tp <= entry if long else tp >= entry):
        problems.append(f"take_profit_wrong_side:{tp:g}vs{entry:g}")
    return problems


def cap_problems(
    order: Order, price: float, portfolio: PortfolioSnapshot, limits: Limits
) -> list[str]:
    """The daily drawdown, notional, gross-exposure and open-position caps after the order."""
    problems: list[str] = []
    equity = portfolio.equity
    if drawdown_breached(portfolio, limits):
        problems.append("halted:daily_drawdown")
    position = portfolio.positions.get(order.symbol)
    held = position.qty if position is not None else 0.0
    after = abs(held + order.side.sign * order.qty)
    if after * price > limits.max_position_notional * equity:
        problems.append("capped:max_position_notional")
    gross_after = gross_exposure(portfolio, order.symbol, price) - abs(held) * price
    gross_after += after * price
    if gross_after > limits.max_gross_exposure * equity:
        problems.append("capped:max_gross_exposure")
    slots_problem = open_positions_problem(order.symbol, occupied_symbols(portfolio), limits)
    if slots_problem is not None:
        problems.append(slots_problem)
    return problems


def reduce_only_problems(order: Order, portfolio: PortfolioSnapshot) -> list[str]:
    """A reduce-only order needs an opposite position at least as large as the order."""
    position = portfolio.positions.get(order.symbol)
    if position is None or position.side is order.side:
        return ["reduce_only:no_position_to_reduce"]
    if order.qty > abs(position.qty) * (1.0 + 1e-12):
        return [f"reduce_only:qty_exceeds_position:{order.qty:g}>{abs(position.qty):g}"]
    return []
