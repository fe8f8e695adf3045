"""Keeps one ib_async connection alive: status codes, connectivity loss, bounded reconnects.

TWS / IB Gateway speak through ``IB.errorEvent`` for everything, including news that is not an
error: the farm codes (2103-2108, 2119, 2157, 2158) say a data farm went up or down and are
logged as status at INFO. 1100 means TWS lost IB's servers while our socket stays up; 1101
/ 1102 mean restored (1101: with subscriptions lost, so they are re-sent). If no restore
arrives within ``restore_grace_s`` the socket is dropped and rebuilt. A closed socket
(``disconnectedEvent``: the nightly restart of TWS / the Gateway, or 1300, a reset of the API
port) is rebuilt with exponential backoff, bounded in delay and attempts, and every registered
subscription is re-sent afterwards.

The connect function and the sleep are injected, so the policy runs in tests without a TWS
and without waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from ib_async import IB

from app.broker.errors import BrokerConnectError

log = logging.getLogger("app.broker.ib")

# Farm / connection news that is not an error (TWS API message codes).
STATUS_CODES: dict[int, str] = {
    2103: "market data farm connection is broken",
    2104: "market data farm connection is OK",
    2105: "historical data farm connection is broken",
    2106: "historical data farm connection is OK",
    2107: "historical data farm connection is inactive",
    2108: "market data farm connection is inactive",
    2119: "market data farm is connecting",
    2157: "sec-def data farm connection is broken",
    2158: "sec-def data farm connection is OK",
}
CONNECTIVITY_LOST = 1100
RESTORED_DATA_LOST = 1101
RESTORED = 1102
SOCKET_PORT_RESET = 1300

Subscription = Callable[[], Awaitable[object]]


class LinkState(StrEnum):
    DOWN = "DOWN"  # never connected, or gave up reconnecting
    UP = "UP"
    LOST = "LOST"  # socket up, TWS has lost IB's servers (1100)
    RECONNECTING = "RECONNECTING"
    CLOSED = "CLOSED"  # closed by us


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (0-based): base * 2**n, capped; bounded attempts."""

    base_s: float = 1.0
    max_s: float = 60.0
    max_attempts: int = 30

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.base_s * 2**attempt)


class IBConnectionKeeper:
    """Listens to one ``IB`` instance's events and keeps its socket up."""

    def __init__(
        self,
        ib: IB,
        connect: Callable[[], Awaitable[None]],
        *,
        backoff: Backoff = Backoff(),
        restore_grace_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.ib = ib
        self._connect = connect
        self.backoff = backoff
        self.restore_grace_s = restore_grace_s
        self._sleep = sleep
        self.state = LinkState.DOWN
        self.reconnects = 0  # successful reconnects, for status and tests
        self._subscriptions: dict[str, Subscription] = {}
        self._restored = asyncio.Event()
        self._reconnecting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected

    async def start(self) -> None:
        """First connect (errors propagate: a refused address is the caller's to report)."""
        self.state = LinkState.DOWN
        await self._connect()
        self.state = LinkState.UP

    def close(self) -> None:
        """Stop keeping the link; a disconnect after this is ours and not repaired."""
        self.state = LinkState.CLOSED
        self.ib.errorEvent -= self._on_error
        self.ib.disconnectedEvent -= self._on_disconnected
        for task in list(self._tasks):
            task.cancel()

    def subscribe(self, name: str, request: Subscription) -> None:
        """Remember a subscription so it is re-sent after a reconnect or a 1101."""
        self._subscriptions[name] = request

    async def idle(self) -> None:
        """Wait until the background work (restore watch, reconnect) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ----------------------------------------------------------------- events

    def _on_error(self, req_id: int, code: int, message: str, _contract: object = None) -> None:
        if code in STATUS_CODES:
            log.info("IB status %d: %s", code, message or STATUS_CODES[code])
        elif code == CONNECTIVITY_LOST:
            log.warning(
                "IB %d: %s; waiting %.0fs for a restore", code, message, self.restore_grace_s
            )
            if self.state is LinkState.UP:
                self.state = LinkState.LOST
                self._restored.clear()
                self._spawn(self._watch_restore())
        elif code in (RESTORED, RESTORED_DATA_LOST):
            log.info("IB %d: %s", code, message)
            if self.state is LinkState.LOST:
                self.state = LinkState.UP
            self._restored.set()
            if code == RESTORED_DATA_LOST:
                self._spawn(self.resubscribe())
        elif code == SOCKET_PORT_RESET:
            log.warning("IB %d: %s; reconnecting", code, message)
            self._drop_and_reconnect()

    def _on_disconnected(self) -> None:
        if self.state in (LinkState.CLOSED, LinkState.DOWN, LinkState.RECONNECTING):
            return  # ours, or a failed connect attempt inside the loop
        log.warning("IB connection closed (TWS / Gateway restart?); reconnecting")
        self._ensure_reconnect()

    # ----------------------------------------------------------------- work

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None] | None:
        try:
            task = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        except RuntimeError:  # no loop: ib_async always emits inside one, so only misuse
            log.error("IB event outside an event loop; nothing scheduled")
            work.close()  # type: ignore[attr-defined]
            return None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _watch_restore(self) -> None:
        try:
            await asyncio.wait_for(self._restored.wait(), self.restore_grace_s)
        except TimeoutError:
            if self.state is LinkState.LOST:
                log.warning(
                    "IB: no restore within %.0fs; rebuilding the socket", self.restore_grace_s
                )
                self._drop_and_reconnect()

    def _drop_and_reconnect(self) -> None:
        self.state = LinkState.RECONNECTING  # so the disconnect below is not handled twice
        self.ib.disconnect()
        self._ensure_reconnect()

    def _ensure_reconnect(self) -> None:
        if self._reconnecting is None or self._reconnecting.done():
            self.state = LinkState.RECONNECTING
            self._reconnecting = self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        for attempt in range(self.backoff.max_attempts):
            await self._sleep(self.backoff.delay(attempt))
            if self.state is LinkState.CLOSED:
                return
            try:
                await self._connect()
            except (OSError, TimeoutError, BrokerConnectError) as exc:
                log.warning("IB reconnect attempt %d failed: %s", attempt + 1, exc)
                continue
            self.state = LinkState.UP
            self.reconnects += 1
            log.info("IB reconnected after %d attempt(s)", attempt + 1)
            await self.resubscribe()
            return
        self.state = LinkState.DOWN
        log.error("IB: gave up reconnecting after %d attempts", self.backoff.max_attempts)

    async def resubscribe(self) -> None:
        for name, request in self._subscriptions.items():
            try:
                await request()
            except Exception as exc:  # one failed subscription must not stop the others
                log.warning("IB: resubscribing %s failed: %s", name, exc)
            else:
                log.info("IB: resubscribed %s", name)
