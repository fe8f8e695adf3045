"""An event hub for server-sent events: signals, fills, risk and model events.

The live loop publishes from any thread; each subscriber (one SSE client) reads from its own
bounded buffer on its event loop. A slow client never slows the loop or other clients: when its
buffer is full the oldest event is dropped and counted (``Subscription.dropped``), and the event
ids (a global sequence) let the client see the gap.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.types import require_utc


class EventKind(StrEnum):
    SIGNAL = "signal"
    FILL = "fill"
    RISK = "risk"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class Event:
    """One published event; ``payload`` is a frozen domain or view object of that kind."""

    seq: int
    kind: EventKind
    ts: datetime
    payload: object

    def __post_init__(self) -> None:
        require_utc("Event", "ts", self.ts)


class TooManySubscribers(RuntimeError):  # noqa: N818 - reads better at the call site
    """The hub already serves its maximum number of subscribers."""


class Subscription:
    """One subscriber's bounded buffer; iterate it (async) to receive events."""

    def __init__(
        self, hub: EventHub, kinds: frozenset[EventKind], size: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._hub = hub
        self.kinds = kinds
        self._buffer: deque[Event] = deque(maxlen=size)
        self._ready = asyncio.Event()
        self._loop = loop
        self.dropped = 0
        self.closed = False

    def _offer(self, event: Event) -> None:
        """Called by the publisher, from any thread."""
        if event.kind not in self.kinds:
            return
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
            self._hub._count_drop()
        self._buffer.append(event)  # deque with maxlen drops the oldest
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the subscriber's loop is closed: it is gone
            self.closed = True

    def pending(self) -> int:
        return len(self._buffer)

    async def next(self) -> Event:
        """Wait for the next event."""
        while not self._buffer:
            self._ready.clear()
            if self._buffer:  # arrived between the check and the clear
                break
            await self._ready.wait()
        return self._buffer.popleft()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while not self.closed:
            yield await self.next()

    def close(self) -> None:
        self.closed = True
        self._hub._remove(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    """Fan-out of published events to bounded per-subscriber buffers."""

    def __init__(self, queue_size: int = 256, max_subscribers: int = 64) -> None:
        if queue_size < 1 or max_subscribers < 1:
            raise ValueError(
                f"EventHub queue_size={queue_size!r}, max_subscribers={max_subscribers!r}: "
                "both must be >= 1"
            )
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.published = 0
        self.dropped = 0

    def subscribe(self, kinds: Iterable[EventKind] | None = None) -> Subscription:
        """A new subscription on the running event loop (all kinds unless ``kinds``)."""
        loop = asyncio.get_running_loop()
        wanted = frozenset(EventKind) if kinds is None else frozenset(kinds)
        with self._lock:
            if len(self._subs) >= self.max_subscribers:
                raise TooManySubscribers(
                    f"event stream: {len(self._subs)} subscribers already, "
                    f"max_subscribers={self.max_subscribers}"
                )
            sub = Subscription(self, wanted or frozenset(EventKind), self.queue_size, loop)
            self._subs.append(sub)
        return sub

    def publish(self, kind: EventKind, ts: datetime, payload: object) -> Event:
        """Send an event to every subscriber of ``kind``; never blocks, from any thread."""
        with self._lock:
            event = Event(next(self._seq), EventKind(kind), ts, payload)
            self.published += 1
            subs = list(self._subs)
        for sub in subs:
            sub._offer(event)
            if sub.closed:
                self._remove(sub)
        return event

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def _count_drop(self) -> None:
        with self._lock:
            self.dropped += 1
