"""IBBroker against the loopback TWS: ib_async's real client, decoder and wrapper on a socket.

Refused connection, a bracket submitted and found again by client id, a rejection (error 201)
ending as REJECTED with IB's message, executions since a cursor, a request nobody answers
ending as VenueUnavailable within the deadline, and a dropped socket rebuilt by the keeper.
"""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime

import pytest

from app.broker.errors import BrokerConnectError, OrderRejected, VenueUnavailable
from app.broker.ib_broker import IBBroker, asset_classes_of
from app.broker.ib_connection import Backoff, LinkState
from app.broker.protocol import Broker
from app.config import IBSettings, Settings
from app.errors import InputError
from app.types import AssetClass, Order, OrderStatus, OrderType, Side
from tests.unit.broker.ib_loopback import LoopbackTWS, error, execution

T0 = datetime(2025, 6, 4, 13, 30, tzinfo=UTC)
CLASSES = {"AAPL": AssetClass.STOCKS, "EURUSD": AssetClass.FOREX}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bracket(cid: str = "d9-AAPL") -> Order:
    return Order(cid, "AAPL", Side.BUY, 10, T0, type=OrderType.LIMIT, limit_price=100.0,
                 stop_loss=95.0, take_profit=110.0)  # fmt: skip


def _with_broker(work, *, tws: LoopbackTWS | None = None, request_timeout: float = 2.0):
    async def run():
        server = tws or LoopbackTWS()
        port = await server.start()
        broker = IBBroker(
            IBSettings(host="127.0.0.1", port=port, client_id=17),
            CLASSES,
            request_timeout=request_timeout,
            backoff=Backoff(base_s=0.01, max_s=0.05, max_attempts=20),
        )
        try:
            await broker.connect()
            return await work(broker, server)
        finally:
            await broker.close()
            await server.stop()

    return asyncio.run(run())


def test_it_is_a_broker_with_native_brackets() -> None:
    broker = IBBroker(IBSettings(), asset_classes_of(Settings().universe))
    assert isinstance(broker, Broker)
    assert broker.capabilities.native_brackets and broker.capabilities.shorting
    assert broker.asset_classes == {"AAPL": AssetClass.STOCKS, "EURUSD": AssetClass.FOREX}
    assert broker.client_id == IBSettings().client_id + 1  # the data source keeps its own id


def test_a_refused_connection_names_host_and_port_fast() -> None:
    port = _closed_port()
    broker = IBBroker(IBSettings(host="127.0.0.1", port=port, client_id=3), CLASSES)
    started = time.monotonic()
    with pytest.raises(BrokerConnectError, match=rf"IB at 127\.0\.0\.1:{port} \(client id 4\)"):
        asyncio.run(broker.connect())
    assert time.monotonic() - started < 2.0
    assert not broker.ib.isConnected() and broker.keeper.state is LinkState.DOWN


def test_requests_without_a_connection_are_venue_unavailable() -> None:
    broker = IBBroker(IBSettings(port=_closed_port()), CLASSES)
    with pytest.raises(VenueUnavailable, match="not connected"):
        asyncio.run(broker.submit(_bracket()))
    with pytest.raises(VenueUnavailable, match="not connected"):
        asyncio.run(broker.positions())


def test_a_bracket_goes_out_as_three_linked_orders_and_is_found_by_client_id() -> None:
    async def work(broker: IBBroker, tws: LoopbackTWS):
        accepted = await broker.submit(_bracket())
        child = await broker.fetch_order("d9-AAPL-sl", "AAPL")
        never = await broker.fetch_order("never-sent", "AAPL")
        return accepted, child, never, tws.messages(3)

    accepted, child, never, placed = _with_broker(work)
    assert (accepted.client_order_id, accepted.status) == ("d9-AAPL", OrderStatus.ACCEPTED)
    assert (accepted.limit_price, accepted.qty, accepted.side) == (100.0, 10.0, Side.BUY)
    assert child is not None and child.status is OrderStatus.ACCEPTED
    assert (child.side, child.type, child.stop_price) == (Side.SELL, OrderType.STOP, 95.0)
    assert never is None
    assert len(placed) == 3  # on the wire: parent, take-profit, stop-loss, with their refs
    assert [next(f for f in m if f.startswith("d9-AAPL")) for m in placed] == [
        "d9-AAPL", "d9-AAPL-tp", "d9-AAPL-sl"
    ]  # fmt: skip


def test_cancel_by_client_id_and_an_unknown_id() -> None:
    async def work(broker: IBBroker, tws: LoopbackTWS):
        await broker.submit(_bracket("d12-AAPL"))
        canceled = await broker.cancel("d12-AAPL", "AAPL")
        again = await broker.cancel("d12-AAPL", "AAPL")  # already final: nothing sent
        return canceled, again, await broker.cancel("never-sent", "AAPL"), tws.messages(4)

    canceled, again, unknown, cancels = _with_broker(work)
    assert canceled is not None and canceled.status is OrderStatus.CANCELED
    assert canceled.message == ""  # 202 is a cancel, not an error
    assert again == canceled and unknown is None
    assert len(cancels) == 1


def test_an_order_ib_rejects_with_201_is_rejected_with_ibs_message() -> None:
    tws = LoopbackTWS()
    why = "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. INSUFFICIENT BUYING POWER"
    tws.on_place = lambda fields: [error(int(fields[1]), 201, why)]

    async def work(broker: IBBroker, _tws: LoopbackTWS):
        with pytest.raises(OrderRejected, match="INSUFFICIENT BUYING POWER") as rejected:
            await broker.submit(_bracket("d10-AAPL"))
        return rejected.value, await broker.fetch_order("d10-AAPL", "AAPL")

    exc, looked_up = _with_broker(work, tws=tws)
    assert "201" in str(exc)
    assert looked_up is not None and looked_up.status is OrderStatus.REJECTED
    assert why in looked_up.message


def test_no_acknowledgement_is_venue_unavailable_and_the_order_stays_findable() -> None:
    tws = LoopbackTWS()
    tws.on_place = lambda fields: []  # accepted by the socket, never answered

    async def work(broker: IBBroker, _tws: LoopbackTWS):
        with pytest.raises(VenueUnavailable, match="no acknowledgement"):
            await broker.submit(_bracket("d11-AAPL"))
        return await broker.fetch_order("d11-AAPL", "AAPL")

    pending = _with_broker(work, tws=tws, request_timeout=0.3)
    assert pending is not None and pending.status is OrderStatus.SUBMITTED


def test_executions_since_a_cursor_with_commissions() -> None:
    tws = LoopbackTWS()
    tws.executions = [
        execution("e1", "20250604 13:30:00 UTC", "BOT", 10, 100.0, order_ref="d9-AAPL"),
        execution("e2", "20250604 13:45:00 UTC", "SLD", 10, 110.0, order_ref="d9-AAPL-tp",
                  commission=1.5),
        execution("e3", "20250604 13:50:00 UTC", "SLD", 25_000, 1.0815, symbol="EURUSD"),
    ]  # fmt: skip

    async def work(broker: IBBroker, _tws: LoopbackTWS):
        return await broker.fills_since(None), await broker.fills_since(
            "20250604-13:40:00", ["AAPL"]
        )

    everything, later = _with_broker(work, tws=tws)
    assert [f.fill_id for f in everything.fills] == ["e1", "e2", "e3"]
    assert everything.cursor == "20250604-13:50:00"
    (tp,) = later.fills
    assert (tp.fill_id, tp.side, tp.reason, tp.fee, tp.price) == (
        "e2", Side.SELL, "take_profit", 1.5, 110.0
    )  # fmt: skip
    assert tp.ts == datetime(2025, 6, 4, 13, 45, tzinfo=UTC)
    assert everything.fills[2].symbol == "EURUSD" and everything.fills[
        2
    ].client_order_id.startswith("ib-")
    with pytest.raises(InputError, match="cursor"):
        asyncio.run(IBBroker(IBSettings(), CLASSES).fills_since("yesterday"))


def test_a_request_nobody_answers_ends_at_the_deadline() -> None:
    async def work(broker: IBBroker, _tws: LoopbackTWS):
        started = time.monotonic()
        with pytest.raises(VenueUnavailable, match=r"contract details of AAPL within 0\.3s"):
            await broker.market_rules("AAPL")  # the loopback never answers reqContractDetails
        return time.monotonic() - started

    assert 0.25 < _with_broker(work, request_timeout=0.3) < 2.0


def test_a_dropped_socket_is_rebuilt_and_requests_work_again() -> None:
    async def work(broker: IBBroker, tws: LoopbackTWS):
        tws.drop_clients()  # the Gateway's nightly restart
        for _ in range(200):
            await asyncio.sleep(0.01)
            if broker.keeper.reconnects:
                break
        return broker.keeper.reconnects, tws.connections, await broker.positions()

    reconnects, connections, positions = _with_broker(work)
    assert (reconnects, connections, positions) == (1, 2, {})
