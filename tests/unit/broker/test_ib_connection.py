"""The reconnect policy, driven by ib_async's own errorEvent / disconnectedEvent.

The ``IB`` instance is real and unconnected; the connect function and the sleep are injected,
so the backoff is observed (the delays asked for) without waiting it out.
"""

from __future__ import annotations

import asyncio
import logging

from ib_async import IB

from app.broker.errors import BrokerConnectError
from app.broker.ib_connection import Backoff, IBConnectionKeeper, LinkState


class Harness:
    """A connect that fails ``failures`` times, a sleep that records, a counted subscription."""

    def __init__(self, *, failures: int = 0, backoff: Backoff = Backoff(), grace: float = 0.05):
        self.ib = IB()
        self.failures = failures
        self.connects = 0
        self.delays: list[float] = []
        self.resubscribed = 0
        self.keeper = IBConnectionKeeper(
            self.ib, self.connect, backoff=backoff, restore_grace_s=grace, sleep=self.sleep
        )
        self.keeper.subscribe("account summary", self.subscription)

    async def connect(self) -> None:
        self.connects += 1
        if self.connects > 1 and self.failures > 0:  # the first connect (start) succeeds
            self.failures -= 1
            raise BrokerConnectError("IB at 127.0.0.1:4002 unreachable (ConnectionRefusedError)")

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)

    async def subscription(self) -> None:
        self.resubscribed += 1


def _run(work):
    return asyncio.run(work())


def test_a_closed_socket_is_rebuilt_with_growing_delays_then_resubscribed() -> None:
    async def work():
        h = Harness(failures=2, backoff=Backoff(base_s=1.0, max_s=60.0, max_attempts=5))
        await h.keeper.start()
        h.ib.disconnectedEvent.emit()  # TWS / Gateway went away (the nightly restart)
        h.ib.disconnectedEvent.emit()  # a second notice while reconnecting changes nothing
        await h.keeper.idle()
        return h

    h = _run(work)
    assert h.delays == [1.0, 2.0, 4.0]  # two refused attempts, the third connects
    assert h.connects == 4 and h.keeper.reconnects == 1
    assert h.resubscribed == 1 and h.keeper.state is LinkState.UP


def test_the_backoff_is_bounded_in_delay_and_attempts() -> None:
    async def work():
        h = Harness(failures=99, backoff=Backoff(base_s=1.0, max_s=5.0, max_attempts=6))
        await h.keeper.start()
        h.ib.disconnectedEvent.emit()
        await h.keeper.idle()
        return h

    h = _run(work)
    assert h.delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert h.keeper.state is LinkState.DOWN and h.keeper.reconnects == 0
    assert h.resubscribed == 0


def test_1100_then_1102_in_time_is_waited_out_without_a_reconnect() -> None:
    async def work():
        h = Harness(grace=5.0)
        await h.keeper.start()
        h.ib.errorEvent.emit(-1, 1100, "Connectivity between IB and TWS has been lost.", None)
        assert h.keeper.state is LinkState.LOST
        await asyncio.sleep(0.01)
        h.ib.errorEvent.emit(-1, 1102, "Connectivity restored - data maintained.", None)
        await h.keeper.idle()
        return h

    h = _run(work)
    assert h.keeper.state is LinkState.UP
    assert h.connects == 1 and h.delays == [] and h.resubscribed == 0


def test_1100_without_a_restore_rebuilds_the_socket() -> None:
    async def work():
        h = Harness(grace=0.05)
        await h.keeper.start()
        h.ib.errorEvent.emit(-1, 1100, "Connectivity between IB and TWS has been lost.", None)
        await h.keeper.idle()
        return h

    h = _run(work)
    assert h.connects == 2 and h.keeper.reconnects == 1 and h.resubscribed == 1
    assert h.keeper.state is LinkState.UP


def test_1101_restored_with_data_lost_resubscribes_only() -> None:
    async def work():
        h = Harness(grace=5.0)
        await h.keeper.start()
        h.ib.errorEvent.emit(-1, 1100, "lost", None)
        h.ib.errorEvent.emit(-1, 1101, "Connectivity restored - data lost.", None)
        await h.keeper.idle()
        return h

    h = _run(work)
    assert (h.connects, h.resubscribed, h.keeper.state) == (1, 1, LinkState.UP)


def test_1300_socket_port_reset_reconnects() -> None:
    async def work():
        h = Harness()
        await h.keeper.start()
        h.ib.errorEvent.emit(-1, 1300, "TWS socket port has been reset", None)
        await h.keeper.idle()
        return h

    h = _run(work)
    assert h.connects == 2 and h.keeper.reconnects == 1


def test_our_own_close_and_a_failing_first_connect_do_not_reconnect() -> None:
    async def work():
        h = Harness()
        h.ib.disconnectedEvent.emit()  # before start: nothing to keep up
        await h.keeper.start()
        h.keeper.close()
        h.ib.disconnectedEvent.emit()
        h.ib.errorEvent.emit(-1, 1100, "lost", None)  # handlers are detached after close
        await h.keeper.idle()
        return h

    h = _run(work)
    assert h.connects == 1 and h.delays == [] and h.keeper.state is LinkState.CLOSED


def test_farm_codes_are_status_at_info_not_errors(caplog) -> None:
    farm = {
        2103: "Market data farm connection is broken:usfarm",
        2104: "Market data farm connection is OK:usfarm",
        2105: "HMDS data farm connection is broken:ushmds",
        2106: "HMDS data farm connection is OK:ushmds",
        2158: "Sec-def data farm connection is OK:secdefnj",
    }

    async def work():
        h = Harness()
        await h.keeper.start()
        with caplog.at_level(logging.DEBUG, logger="app.broker.ib"):
            for code, text in farm.items():
                h.ib.errorEvent.emit(-1, code, text, None)
            await h.keeper.idle()
            h.ib.errorEvent.emit(-1, 1100, "Connectivity between IB and TWS has been lost.", None)
        h.keeper.close()
        return h

    h = _run(work)
    ours = [r for r in caplog.records if r.name == "app.broker.ib"]
    farm_records = [r for r in ours if any(text in r.getMessage() for text in farm.values())]
    assert len(farm_records) == 5
    assert {r.levelno for r in farm_records} == {logging.INFO}
    assert all("status" in r.getMessage() for r in farm_records)
    lost = [r for r in ours if "1100" in r.getMessage()]
    assert [r.levelno for r in lost] == [logging.WARNING]
    assert h.keeper.state is not LinkState.RECONNECTING and h.connects == 1
