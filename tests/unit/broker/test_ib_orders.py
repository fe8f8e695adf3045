"""Native brackets from a real ``IB.bracketOrder``: ids, parent links, transmit flags, sides.

``bracketOrder`` takes order ids from the client, which only a client that finished the API
handshake has (an unconnected ``IB`` raises ``ConnectionError: Not connected``), so the IB
instance here is connected to the loopback TWS.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from ib_async import IB, LimitOrder, MarketOrder, StopOrder
from ib_async.util import UNSET_DOUBLE

from app.broker.errors import OrderRejected
from app.broker.ib_orders import check_bracket_sides, orders_for
from app.types import Order, OrderType, Side
from tests.unit.broker.ib_loopback import LoopbackTWS

T0 = datetime(2025, 6, 4, 13, 30, tzinfo=UTC)


def _with_connected_ib(work):
    async def run():
        tws = LoopbackTWS(next_order_id=500)
        port = await tws.start()
        ib = IB()
        try:
            await ib.connectAsync("127.0.0.1", port, clientId=5, timeout=5)
            return work(ib)
        finally:
            ib.disconnect()
            await tws.stop()

    return asyncio.run(run())


def _entry(side: Side, **kw) -> Order:
    return Order(client_order_id="d7-AAPL", symbol="AAPL", side=side, qty=10, ts=T0, **kw)


def test_a_buy_limit_bracket_is_parent_take_profit_stop_linked_and_sent_as_one() -> None:
    order = _entry(Side.BUY, type=OrderType.LIMIT, limit_price=100.0, stop_loss=95.0,
                   take_profit=110.0)  # fmt: skip
    parent, tp, sl = _with_connected_ib(lambda ib: orders_for(ib, order))
    assert isinstance(parent, LimitOrder) and isinstance(tp, LimitOrder)
    assert isinstance(sl, StopOrder)
    assert parent.orderId >= 500 and tp.orderId == parent.orderId + 1
    assert sl.orderId == parent.orderId + 2
    assert (tp.parentId, sl.parentId, parent.parentId) == (parent.orderId, parent.orderId, 0)
    assert [o.transmit for o in (parent, tp, sl)] == [False, False, True]
    assert [o.action for o in (parent, tp, sl)] == ["BUY", "SELL", "SELL"]
    assert (sl.auxPrice, parent.lmtPrice, tp.lmtPrice) == (95.0, 100.0, 110.0)
    assert sl.auxPrice < parent.lmtPrice < tp.lmtPrice
    assert [o.orderRef for o in (parent, tp, sl)] == ["d7-AAPL", "d7-AAPL-tp", "d7-AAPL-sl"]
    assert {o.tif for o in (parent, tp, sl)} == {"GTC"}
    assert [o.orderType for o in (parent, tp, sl)] == ["LMT", "LMT", "STP"]


def test_a_sell_market_bracket_has_a_mkt_parent_and_exits_above_and_below() -> None:
    order = _entry(Side.SELL, stop_loss=105.0, take_profit=92.0)
    parent, tp, sl = _with_connected_ib(lambda ib: orders_for(ib, order))
    assert parent.orderType == "MKT" and parent.lmtPrice == UNSET_DOUBLE
    assert [o.action for o in (parent, tp, sl)] == ["SELL", "BUY", "BUY"]
    assert tp.lmtPrice == 92.0 < sl.auxPrice == 105.0
    assert (tp.parentId, sl.parentId) == (parent.orderId, parent.orderId)
    assert [o.transmit for o in (parent, tp, sl)] == [False, False, True]


def test_an_order_without_exits_is_one_transmitted_order() -> None:
    (close,) = _with_connected_ib(lambda ib: orders_for(ib, _entry(Side.SELL)))
    assert isinstance(close, MarketOrder) and close.transmit and close.orderRef == "d7-AAPL"
    assert close.orderId >= 500 and close.parentId == 0


@pytest.mark.parametrize(
    ("side", "kw"),
    [
        (Side.BUY, {"stop_loss": 110.0, "take_profit": 95.0}),
        (Side.SELL, {"stop_loss": 95.0, "take_profit": 110.0}),
        (Side.BUY, {"type": OrderType.LIMIT, "limit_price": 120.0, "stop_loss": 95.0,
                    "take_profit": 110.0}),
        (Side.SELL, {"type": OrderType.LIMIT, "limit_price": 90.0, "stop_loss": 105.0,
                     "take_profit": 92.0}),
        (Side.BUY, {"stop_loss": 95.0}),
    ],
)  # fmt: skip
def test_exits_on_the_wrong_side_are_refused_before_sending(side: Side, kw: dict) -> None:
    with pytest.raises(OrderRejected, match="d7-AAPL"):
        check_bracket_sides(_entry(side, **kw))


def test_a_bracket_needs_the_order_ids_of_a_live_client() -> None:
    with pytest.raises(ConnectionError, match="Not connected"):
        orders_for(IB(), _entry(Side.BUY, stop_loss=95.0, take_profit=110.0))
