"""Our Order -> the ib_async orders to place: a single order, or a native bracket.

A bracket is ``IB.bracketOrder``: the parent, a take-profit LMT and a stop-loss STP on the
other side, children linked by ``parentId``, ``transmit`` False/False/True so nothing goes
live until the last child is sent (IB then cancels the sibling when one exit fills). Each
order's ``orderRef`` is our client id (children ``<id>-tp`` / ``<id>-sl``), which is how an
order is found again after a timeout or a restart. Prices on the wrong side are refused here,
before anything is sent.
"""

from __future__ import annotations

from ib_async import IB, LimitOrder, MarketOrder, StopOrder
from ib_async import Order as IBOrder
from ib_async.util import UNSET_DOUBLE

from app.broker.errors import OrderRejected
from app.broker.ib_mapping import SL_SUFFIX, TP_SUFFIX
from app.types import Order, OrderType, Side

TIME_IN_FORCE = "GTC"  # exits must outlive the session the entry was placed in


def check_bracket_sides(order: Order) -> None:
    """BUY: stop < entry < take-profit; SELL: take-profit < entry < stop (entry if known)."""
    sl, tp = order.stop_loss, order.take_profit
    if sl is None or tp is None:
        raise OrderRejected(f"{order.client_order_id}: a bracket needs stop_loss and take_profit")
    entry = order.limit_price if order.type is OrderType.LIMIT else None
    low, high = (sl, tp) if order.side is Side.BUY else (tp, sl)
    ok = low < high and (entry is None or low < entry < high)
    if not ok:
        where = f" around entry {entry}" if entry is not None else ""
        raise OrderRejected(
            f"{order.client_order_id}: {order.side} bracket with stop_loss={sl} and "
            f"take_profit={tp}{where} has a price on the wrong side"
        )


def single_order(order: Order, order_id: int = 0) -> IBOrder:
    """A market, limit or stop order without exits (a close, a flatten, a reduce)."""
    kwargs = {"orderRef": order.client_order_id, "tif": TIME_IN_FORCE, "transmit": True}
    if order_id:
        kwargs["orderId"] = order_id
    if order.type is OrderType.LIMIT:
        return LimitOrder(order.side.value, order.qty, order.limit_price, **kwargs)
    if order.type is OrderType.STOP:
        return StopOrder(order.side.value, order.qty, order.stop_price, **kwargs)
    return MarketOrder(order.side.value, order.qty, **kwargs)


def bracket_orders(ib: IB, order: Order) -> list[IBOrder]:
    """[parent, take-profit, stop-loss] from ``ib.bracketOrder`` (needs ids: a live client).

    ``bracketOrder`` always makes a LMT parent; a MARKET entry keeps the linkage and ids but
    is turned into a MKT parent.
    """
    check_bracket_sides(order)
    if order.type is OrderType.STOP:
        raise OrderRejected(f"{order.client_order_id}: a STOP entry cannot carry a native bracket")
    entry = order.limit_price if order.type is OrderType.LIMIT else order.take_profit
    parent, take_profit, stop_loss = ib.bracketOrder(
        order.side.value,
        order.qty,
        limitPrice=entry,
        takeProfitPrice=order.take_profit,
        stopLossPrice=order.stop_loss,
        tif=TIME_IN_FORCE,
    )
    if order.type is OrderType.MARKET:
        parent.orderType = "MKT"
        parent.lmtPrice = UNSET_DOUBLE
    parent.orderRef = order.client_order_id
    take_profit.orderRef = order.client_order_id + TP_SUFFIX
    stop_loss.orderRef = order.client_order_id + SL_SUFFIX
    return [parent, take_profit, stop_loss]


def orders_for(ib: IB, order: Order) -> list[IBOrder]:
    """What to place for ``order``: a bracket when it carries exits, else one order."""
    if order.stop_loss is not None or order.take_profit is not None:
        return bracket_orders(ib, order)
    return [single_order(order, ib.client.getReqId())]
