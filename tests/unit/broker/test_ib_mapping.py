"""ib_async's own Trade / Fill / Position / AccountValue / ContractDetails -> domain types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from ib_async import (
    AccountValue,
    CommissionReport,
    ContractDetails,
    Execution,
    Forex,
    LimitOrder,
    MarketOrder,
    Stock,
    StopOrder,
    Trade,
    TradeLogEntry,
)
from ib_async import Fill as IBFill
from ib_async import OrderStatus as IBOrderStatus
from ib_async import Position as IBPosition
from ib_async.util import UNSET_DOUBLE

from app.broker.ib_mapping import (
    FOREX_MIN_QTY,
    balances_from_account_values,
    fill_from_ib,
    market_rules_from_details,
    position_from_ib,
    venue_order_from_trade,
)
from app.types import AssetClass, Fill, InvalidField, OrderStatus, OrderType, Position, Side

T0 = datetime(2025, 6, 4, 13, 30, tzinfo=UTC)
AAPL = Stock("AAPL", "SMART", "USD")
EURUSD = Forex("EURUSD")


def _trade(
    status: str,
    *,
    order=None,
    contract=AAPL,
    filled: float = 0.0,
    avg: float = 0.0,
    log: list[TradeLogEntry] | None = None,
) -> Trade:
    order = order or LimitOrder("BUY", 100, 190.5, orderRef="d1-AAPL", orderId=7, permId=4242)
    status_ = IBOrderStatus(
        orderId=order.orderId,
        status=status,
        filled=filled,
        remaining=order.totalQuantity - filled,
        avgFillPrice=avg,
    )
    if log is None:
        log = [TradeLogEntry(T0, "PendingSubmit"), TradeLogEntry(T0, status)]
    return Trade(contract=contract, order=order, orderStatus=status_, log=log)


@pytest.mark.parametrize(
    ("ib_status", "filled", "ours"),
    [
        ("PendingSubmit", 0, OrderStatus.SUBMITTED),
        ("ApiPending", 0, OrderStatus.SUBMITTED),
        ("PreSubmitted", 0, OrderStatus.ACCEPTED),
        ("Submitted", 0, OrderStatus.ACCEPTED),
        ("Submitted", 40, OrderStatus.PARTIALLY_FILLED),
        ("PendingCancel", 0, OrderStatus.ACCEPTED),
        ("Filled", 100, OrderStatus.FILLED),
        ("Cancelled", 0, OrderStatus.CANCELED),
        ("ApiCancelled", 0, OrderStatus.CANCELED),
        ("Inactive", 0, OrderStatus.REJECTED),
        ("SomethingNew", 0, OrderStatus.UNKNOWN),
    ],
)
def test_ib_order_states_map_to_ours(ib_status: str, filled: float, ours: OrderStatus) -> None:
    venue = venue_order_from_trade(_trade(ib_status, filled=filled, avg=190.4 if filled else 0))
    assert venue.status is ours
    assert venue.filled_qty == filled
    assert venue.avg_fill_price == (190.4 if filled else None)  # IB's 0.0 means "none yet"


def test_a_limit_trade_maps_every_field() -> None:
    venue = venue_order_from_trade(_trade("Submitted"))
    assert (venue.client_order_id, venue.symbol, venue.side, venue.qty) == (
        "d1-AAPL", "AAPL", Side.BUY, 100.0
    )  # fmt: skip
    assert (venue.type, venue.limit_price, venue.stop_price) == (OrderType.LIMIT, 190.5, None)
    assert venue.venue_order_id == "4242" and venue.ts == T0 and venue.message == ""


def test_stop_child_on_forex_and_an_external_order() -> None:
    stop = StopOrder("SELL", 25_000, 1.0712, orderRef="d2-EURUSD-sl", orderId=9, permId=77)
    venue = venue_order_from_trade(_trade("PreSubmitted", order=stop, contract=EURUSD))
    assert (venue.symbol, venue.side, venue.type, venue.stop_price) == (
        "EURUSD", Side.SELL, OrderType.STOP, 1.0712
    )  # fmt: skip
    assert venue.limit_price is None  # a STP's lmtPrice is UNSET_DOUBLE at IB
    manual = MarketOrder("SELL", 5, permId=5150)  # placed in TWS: no orderRef, no API id
    assert venue_order_from_trade(_trade("Submitted", order=manual)).client_order_id == "ib-5150"


def test_an_order_error_201_is_a_rejection_with_ibs_words() -> None:
    # what ib_async's wrapper leaves on a Trade that got "Error 201" before going live
    why = "Error 201, reqId 7: Order rejected - reason:Insufficient buying power"
    log = [TradeLogEntry(T0, "PendingSubmit"), TradeLogEntry(T0, "Cancelled", why, 201)]
    venue = venue_order_from_trade(_trade("Cancelled", log=log))
    assert venue.status is OrderStatus.REJECTED
    assert venue.message == why


def test_an_error_before_going_live_is_a_rejection_but_after_it_a_cancel() -> None:
    why = "Error 10147, reqId 7: OrderId 7 that needs to be cancelled is not found."
    early = [TradeLogEntry(T0, "PendingSubmit"), TradeLogEntry(T0, "Cancelled", why, 10147)]
    assert venue_order_from_trade(_trade("Cancelled", log=early)).status is OrderStatus.REJECTED
    live = [TradeLogEntry(T0, "Submitted"), TradeLogEntry(T0, "Cancelled", why, 10147)]
    venue = venue_order_from_trade(_trade("Cancelled", log=live))
    assert venue.status is OrderStatus.CANCELED and venue.message == why
    cancel_202 = [TradeLogEntry(T0, "Submitted"), TradeLogEntry(T0, "Cancelled", "Error 202", 202)]
    plain = venue_order_from_trade(_trade("Cancelled", log=cancel_202))
    assert plain.status is OrderStatus.CANCELED and plain.message == ""


def _fill(side: str, *, ref: str = "d1-AAPL", commission: float = 1.25, when=T0) -> IBFill:
    execution = Execution(
        execId="0000e0d5.6650a1b2.01.01", time=when, side=side, shares=40, price=190.52,
        permId=4242, orderId=7, orderRef=ref, cumQty=40, avgPrice=190.52,
    )  # fmt: skip
    report = CommissionReport(execId=execution.execId, commission=commission, currency="USD")
    return IBFill(AAPL, execution, report, when)


def test_an_execution_with_its_commission_maps_to_a_fill() -> None:
    new_york = T0.astimezone(ZoneInfo("America/New_York"))
    fill = fill_from_ib(_fill("BOT", when=new_york))
    assert fill == Fill(
        client_order_id="d1-AAPL",
        symbol="AAPL",
        side=Side.BUY,
        qty=40.0,
        price=190.52,
        fee=1.25,
        ts=T0,
        reason="entry",
        fill_id="0000e0d5.6650a1b2.01.01",
    )
    assert fill.ts.tzinfo is UTC


def test_exit_fills_carry_their_reason_and_sld_is_a_sell() -> None:
    stop = fill_from_ib(_fill("SLD", ref="d1-AAPL-sl"))
    assert (stop.side, stop.reason, stop.client_order_id) == (Side.SELL, "stop_loss", "d1-AAPL-sl")
    assert fill_from_ib(_fill("SLD", ref="d1-AAPL-tp")).reason == "take_profit"


def test_a_commission_not_reported_yet_is_zero_and_a_naive_time_is_refused() -> None:
    assert fill_from_ib(_fill("BOT", commission=UNSET_DOUBLE)).fee == 0.0
    with pytest.raises(InvalidField, match="Execution.time"):
        fill_from_ib(_fill("BOT", when=datetime(2025, 6, 4, 13, 30)))
    with pytest.raises(InvalidField, match="side"):
        fill_from_ib(_fill("HOLD"))


def test_positions_long_short_and_the_flat_rows_ib_keeps_sending() -> None:
    long = position_from_ib(IBPosition("DU1", AAPL, 100.0, 190.2), T0)
    assert long == Position("AAPL", 100.0, 190.2, T0)
    short = position_from_ib(IBPosition("DU1", EURUSD, -25_000.0, 1.0801), T0)
    assert short == Position("EURUSD", -25_000.0, 1.0801, T0) and short.side is Side.SELL
    assert position_from_ib(IBPosition("DU1", AAPL, 0.0, 0.0), T0) is None


def test_balances_are_cash_per_currency_without_base() -> None:
    values = [
        AccountValue("DU1", "CashBalance", "100000.50", "USD", ""),
        AccountValue("DU1", "CashBalance", "-2500", "EUR", ""),
        AccountValue("DU1", "CashBalance", "97800.0", "BASE", ""),
        AccountValue("DU1", "NetLiquidation", "125000", "USD", ""),
        AccountValue("DU1", "AccountType", "INDIVIDUAL", "", ""),
    ]
    assert balances_from_account_values(values) == {"USD": 100000.5, "EUR": -2500.0}
    only_total = [AccountValue("DU1", "TotalCashValue", "5000", "USD", "")]
    assert balances_from_account_values(only_total) == {"USD": 5000.0}


def test_market_rules_from_contract_details() -> None:
    stock = market_rules_from_details(
        "AAPL", AssetClass.STOCKS, ContractDetails(contract=AAPL, minTick=0.01, minSize=1,
                                                   sizeIncrement=1)
    )  # fmt: skip
    assert (stock.price_step, stock.qty_step, stock.min_qty) == (0.01, 1.0, 1.0)
    fx = market_rules_from_details(
        "EURUSD", AssetClass.FOREX, ContractDetails(contract=EURUSD, minTick=0.00005)
    )
    assert (fx.price_step, fx.qty_step, fx.min_qty) == (0.00005, 1.0, FOREX_MIN_QTY)
    with pytest.raises(InvalidField, match="minTick"):
        market_rules_from_details("AAPL", AssetClass.STOCKS, ContractDetails(contract=AAPL))


def test_log_times_are_utc_even_from_another_zone() -> None:
    tokyo = (T0 + timedelta(minutes=5)).astimezone(ZoneInfo("Asia/Tokyo"))
    venue = venue_order_from_trade(_trade("Submitted", log=[TradeLogEntry(tokyo, "Submitted")]))
    assert venue.ts == T0 + timedelta(minutes=5) and venue.ts.tzinfo is UTC
