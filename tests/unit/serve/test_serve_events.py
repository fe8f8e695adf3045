"""EventHub: fan-out to bounded per-subscriber buffers, from any thread, never blocking."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.serve.events import EventHub, EventKind, TooManySubscribers
from tests.builders import T0


def test_subscribers_get_their_kinds_in_order() -> None:
    async def run() -> None:
        hub = EventHub()
        everything = hub.subscribe()
        fills = hub.subscribe([EventKind.FILL])
        hub.publish(EventKind.SIGNAL, T0, "s1")
        hub.publish(EventKind.FILL, T0, "f1")
        hub.publish(EventKind.RISK, T0, "r1")
        got = [(await everything.next()).payload for _ in range(3)]
        assert got == ["s1", "f1", "r1"]
        only = await fills.next()
        assert only.payload == "f1" and only.seq == 2 and fills.pending() == 0
        assert hub.published == 3 and hub.subscribers == 2

    asyncio.run(run())


def test_a_slow_subscriber_loses_the_oldest_events_not_the_newest() -> None:
    async def run() -> None:
        hub = EventHub(queue_size=3)
        sub = hub.subscribe()
        for i in range(5):
            hub.publish(EventKind.SIGNAL, T0, i)
        assert sub.dropped == 2 and hub.dropped == 2
        assert [(await sub.next()).payload for _ in range(3)] == [2, 3, 4]

    asyncio.run(run())


def test_publish_from_another_thread_wakes_the_waiting_subscriber() -> None:
    async def run() -> None:
        hub = EventHub()
        sub = hub.subscribe()
        waiting = asyncio.ensure_future(sub.next())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        thread = threading.Thread(target=hub.publish, args=(EventKind.FILL, T0, "from-thread"))
        thread.start()
        event = await asyncio.wait_for(waiting, timeout=5)
        thread.join()
        assert event.payload == "from-thread" and event.kind is EventKind.FILL

    asyncio.run(run())


def test_subscriber_limit_and_close() -> None:
    async def run() -> None:
        hub = EventHub(max_subscribers=1)
        async with hub.subscribe():
            with pytest.raises(TooManySubscribers, match="max_subscribers=1"):
                hub.subscribe()
        assert hub.subscribers == 0
        hub.subscribe()  # room again after the close

    asyncio.run(run())
    with pytest.raises(ValueError, match="queue_size=0"):
        EventHub(queue_size=0)


def test_iterating_a_subscription_yields_until_closed() -> None:
    async def run() -> None:
        hub = EventHub()
        sub = hub.subscribe()
        for i in range(3):
            hub.publish(EventKind.RISK, T0, i)
        seen = []
        async for event in sub:
            seen.append(event.payload)
            if len(seen) == 3:
                sub.close()
        assert seen == [0, 1, 2] and hub.subscribers == 0

    asyncio.run(run())
