"""ib_async objects -> domain types: the one place IB's wire shapes are read.

Pure functions, no connection. ``Trade``/``OrderStatus`` become a :class:`VenueOrder`,
``ib_async.Fill`` (an ``Execution`` plus its ``CommissionReport``) a :class:`~app.types.Fill`,
``ib_async.Position`` a :class:`~app.types.Position`, account values a balance dict and
``ContractDetails`` the :class:`MarketRules` the engine rounds with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

from ib_async import CommissionReport, Contract, ContractDetails, Trade
from ib_async import Fill as IBFill
from ib_async import Position as IBPosition

from app.broker.protocol import MarketRules, VenueOrder
from app.types import AssetClass, Fill, InvalidField, OrderStatus, OrderType, Position, Side

TP_SUFFIX = "-tp"  # bracket children's orderRef: <client_order_id>-tp / -sl (protocol.py)
SL_SUFFIX = "-sl"

# IB's order states (ib_async.OrderStatus) -> ours. PendingSubmit/ApiPending: sent, no ack yet.
# PreSubmitted: accepted and held (a bracket child, a stop not yet triggered). ValidationError is
# ib_async's own marker for a warning on a live order; PendingCancel is still live too.
_STATUS: dict[str, OrderStatus] = {
    "PendingSubmit": OrderStatus.SUBMITTED,
    "ApiPending": OrderStatus.SUBMITTED,
    "PreSubmitted": OrderStatus.ACCEPTED,
    "Submitted": OrderStatus.ACCEPTED,
    "ApiUpdate": OrderStatus.ACCEPTED,
    "ValidationError": OrderStatus.ACCEPTED,
    "PendingCancel": OrderStatus.ACCEPTED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "ApiCancelled": OrderStatus.CANCELED,
    "Inactive": OrderStatus.REJECTED,
}
_LIVE_AT_VENUE = frozenset({"PreSubmitted", "Submitted"})
# 202 = "Order cancelled" (a cancel, ours or the venue's); 201 = "Order rejected - reason: ...".
_CANCEL_CODES = frozenset({202, 10148})
_REJECT_CODE = 201
_ORDER_TYPES = {"MKT": OrderType.MARKET, "LMT": OrderType.LIMIT, "STP": OrderType.STOP}
_SIDES = {"BUY": Side.BUY, "BOT": Side.BUY, "SELL": Side.SELL, "SLD": Side.SELL}
_UNSET = 1e300  # ib_async's UNSET_DOUBLE is sys.float_info.max

# Lot rules IB does not send in ContractDetails: IDEALPRO trades whole units of the base
# currency, and orders under 20,000 (USD equivalent) are routed as odd lots at worse prices.
FOREX_MIN_QTY = 20_000.0


def symbol_of(contract: Contract) -> str:
    """Our symbol for an IB contract: ``EUR``+``USD`` -> ``EURUSD`` for CASH, else the ticker."""
    if contract.secType == "CASH":
        return f"{contract.symbol}{contract.currency}"
    return contract.symbol


def side_from_ib(action: str) -> Side:
    """``BUY``/``BOT`` -> BUY, ``SELL``/``SLD`` -> SELL (orders say BUY, executions say BOT)."""
    try:
        return _SIDES[action.upper()]
    except KeyError as exc:
        raise InvalidField("IB", "side", action, "bad_side", "not BUY/BOT/SELL/SLD") from exc


def client_id_of(order_ref: str, perm_id: int) -> str:
    """The orderRef we sent, or ``ib-<permId>`` for an order placed outside (TWS, another app)."""
    return order_ref or f"ib-{perm_id}"


def fill_reason(client_order_id: str) -> str:
    if client_order_id.endswith(TP_SUFFIX):
        return "take_profit"
    if client_order_id.endswith(SL_SUFFIX):
        return "stop_loss"
    return "entry"


def utc(value: datetime, field_name: str) -> datetime:
    """An aware IB time in UTC; a naive one is refused (its zone would be a guess)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidField("IB", field_name, value, "bad_timestamp", "naive or missing time")
    return value.astimezone(UTC)


def _price(value: float) -> float | None:
    """IB sends 0 or UNSET_DOUBLE for 'no price'."""
    if value is None or not math.isfinite(value) or value <= 0 or value >= _UNSET:
        return None
    return float(value)


def status_from_ib(trade: Trade) -> tuple[OrderStatus, str]:
    """Our status for a Trade, and IB's words when it ended on an error.

    ib_async marks an order that got an error as ``Cancelled`` with the error in its log; that
    is a REJECTED when IB said so (201) or when the order never went live, else a CANCELED.
    """
    ib_status = trade.orderStatus.status
    status = _STATUS.get(ib_status, OrderStatus.UNKNOWN)
    errors = [e for e in trade.log if e.errorCode and e.errorCode not in _CANCEL_CODES]
    message = errors[-1].message if errors else ""
    if status is OrderStatus.CANCELED and errors:
        went_live = any(e.status in _LIVE_AT_VENUE for e in trade.log)
        if errors[-1].errorCode == _REJECT_CODE or not went_live:
            status = OrderStatus.REJECTED
    if status is OrderStatus.REJECTED and not message:
        message = trade.orderStatus.whyHeld or f"IB status {ib_status}"
    if status is OrderStatus.ACCEPTED and trade.orderStatus.filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    return status, message


def venue_order_from_trade(trade: Trade) -> VenueOrder:
    """One ib_async Trade -> VenueOrder (status, fills so far, prices, IB's message)."""
    order, st = trade.order, trade.orderStatus
    status, message = status_from_ib(trade)
    order_type = _ORDER_TYPES.get(order.orderType, OrderType.MARKET)
    last = trade.log[-1].time if trade.log else None
    return VenueOrder(
        client_order_id=client_id_of(order.orderRef, order.permId or st.permId),
        symbol=symbol_of(trade.contract),
        side=side_from_ib(order.action),
        qty=float(order.totalQuantity),
        status=status,
        filled_qty=float(st.filled or 0.0),
        avg_fill_price=_price(st.avgFillPrice),
        type=order_type,
        limit_price=_price(order.lmtPrice) if order_type is OrderType.LIMIT else None,
        stop_price=_price(order.auxPrice) if order_type is OrderType.STOP else None,
        venue_order_id=str(order.permId or st.permId or order.orderId),
        ts=utc(last, "TradeLogEntry.time") if last is not None else None,
        message=message,
    )


def fee_from_report(report: CommissionReport) -> float:
    """The commission, 0.0 while IB has not reported it yet (UNSET_DOUBLE or empty)."""
    fee = report.commission
    if fee is None or not math.isfinite(fee) or fee >= _UNSET:
        return 0.0
    return abs(float(fee))


def fill_from_ib(fill: IBFill) -> Fill:
    """One execution -> Fill: ``fill_id`` = execId, time in UTC, fee from the commission report."""
    ex = fill.execution
    client_id = client_id_of(ex.orderRef, ex.permId)
    return Fill(
        client_order_id=client_id,
        symbol=symbol_of(fill.contract),
        side=side_from_ib(ex.side),
        qty=float(ex.shares),
        price=float(ex.price),
        fee=fee_from_report(fill.commissionReport),
        ts=utc(ex.time, "Execution.time"),
        reason=fill_reason(client_id),
        fill_id=ex.execId,
    )


def position_from_ib(position: IBPosition, opened_at: datetime) -> Position | None:
    """IB position -> Position; None for the flat rows IB keeps sending after a close.

    IB does not say when a position was opened: ``opened_at`` is the caller's clock.
    For stocks ``avgCost`` is per share (commission included); for forex it is the price.
    """
    if position.position == 0:
        return None
    return Position(
        symbol=symbol_of(position.contract),
        qty=float(position.position),
        avg_price=float(position.avgCost),
        opened_at=opened_at,
    )


def balances_from_account_values(values: Iterable[object]) -> dict[str, float]:
    """Cash per currency from account summary / account values (``CashBalance`` rows).

    ``BASE`` is IB's sum in the base currency, not a holding, and is left out; an account that
    sends no per-currency ledger falls back to ``TotalCashValue``.
    """
    cash: dict[str, float] = {}
    total: dict[str, float] = {}
    for v in values:
        tag, currency, raw = v.tag, v.currency, v.value  # type: ignore[attr-defined]
        if not currency or currency == "BASE":
            continue
        try:
            amount = float(raw)
        except (TypeError, ValueError):
            continue
        if tag == "CashBalance":
            cash[currency] = amount
        elif tag == "TotalCashValue":
            total[currency] = amount
    return cash or total


def market_rules_from_details(
    symbol: str, asset_class: AssetClass, details: ContractDetails
) -> MarketRules:
    """Tick size from ``minTick``; lot size from ``sizeIncrement``/``minSize`` (forex: IDEALPRO)."""
    tick = _price(details.minTick)
    if tick is None:
        raise InvalidField("ContractDetails", "minTick", details.minTick, "missing", symbol)
    step = _price(details.sizeIncrement) or 1.0
    min_size = _price(details.minSize)
    if AssetClass(asset_class) is AssetClass.FOREX:
        min_size = max(min_size or 0.0, FOREX_MIN_QTY)
    return MarketRules(symbol=symbol, qty_step=step, price_step=tick, min_qty=min_size or step)
