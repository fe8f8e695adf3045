"""A minimal TWS / IB Gateway on 127.0.0.1 that speaks the TWS API socket protocol.

Far enough for ib_async's real ``connectAsync``: the handshake (``API\\0`` + version range ->
server version), ``startApi`` -> nextValidId and managedAccounts, and the end markers of the
startup sync (positions, open and completed orders, account updates, executions). A placed
order is answered by ``on_place`` (default: ``Submitted`` for the parent, ``PreSubmitted`` for
children). Everything else is recorded in ``received`` and never answered, which is how a
request timeout is exercised, unless ``handlers`` answers its message id (historical bars:
tests/support/ib_history.py). ``drop_clients`` closes every socket, like the nightly restart.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

SERVER_VERSION = 176  # >= 166: error messages carry the advanced-reject field
ACCOUNT = "DU0000001"

Frame = tuple[str, ...]
PlaceAnswer = Callable[[list[str]], list[Frame]]


def frame(*fields: object) -> bytes:
    payload = "".join(f"{f}\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def order_status(order_id: int, status: str, client_id: int, *, filled: float = 0) -> Frame:
    """orderStatus: id, status, filled, remaining, avgFillPrice, permId, parentId, lastFill,
    clientId, whyHeld, mktCapPrice."""
    perm_id = 900_000 + order_id
    return ("3", str(order_id), status, str(filled), "0", "0", str(perm_id), "0", "0",
            str(client_id), "", "0")  # fmt: skip


def error(req_id: int, code: int, message: str) -> Frame:
    return ("4", "2", str(req_id), str(code), message, "")


def execution(
    exec_id: str,
    ts: str,
    side: str,
    shares: float,
    price: float,
    *,
    symbol: str = "AAPL",
    order_ref: str = "",
    order_id: int = 0,
    commission: float = 1.0,
) -> tuple[Frame, Frame]:
    """execDetails (reqId filled in later) and its commissionReport, as TWS sends them."""
    sec_type, currency = ("CASH", symbol[3:]) if len(symbol) == 6 else ("STK", "USD")
    base = symbol[:3] if sec_type == "CASH" else symbol
    details = ("11", "{req_id}", str(order_id), "265598", base, sec_type, "", "0", "", "",
               "SMART", currency, base, base, exec_id, ts, ACCOUNT, "ISLAND", side, str(shares),
               str(price), str(900_000 + order_id), "18", "0", str(shares), str(price),
               order_ref, "", "", "", "1")  # fmt: skip
    report = ("59", "1", exec_id, str(commission), "USD", "0", "", "")
    return details, report


def default_place(client_id: int) -> PlaceAnswer:
    def answer(fields: list[str]) -> list[Frame]:
        order_id = int(fields[1])
        is_child = any(f.endswith(("-tp", "-sl")) for f in fields)  # the orderRef field
        return [order_status(order_id, "PreSubmitted" if is_child else "Submitted", client_id)]

    return answer


class LoopbackTWS:
    """One listening socket; serves any number of sequential or parallel clients."""

    def __init__(self, *, next_order_id: int = 100, client_id: int = 18) -> None:
        self.next_order_id = next_order_id
        self.received: list[list[str]] = []
        self.connections = 0
        self.executions: list[tuple[Frame, Frame]] = []  # see ``execution``
        self.client_id = client_id
        self.on_place: PlaceAnswer = default_place(client_id)
        self.handlers: dict[int, PlaceAnswer] = {}  # incoming message id -> its answer
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.drop_clients()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop_clients(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def messages(self, msg_id: int) -> list[list[str]]:
        return [m for m in self.received if m and m[0] == str(msg_id)]

    def send_all(self, *frames: Frame) -> None:
        for writer in self._writers:
            for f in frames:
                writer.write(frame(*f))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            if await reader.readexactly(4) != b"API\0":
                return
            await self._read(reader)  # "v157..178"
            writer.write(frame(SERVER_VERSION, "20250604 13:30:00 UTC"))
            while True:
                fields = (await self._read(reader)).decode().split("\0")[:-1]
                self.received.append(fields)
                for reply in self._answer(fields):
                    writer.write(frame(*reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping
        finally:
            writer.close()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> bytes:
        (size,) = struct.unpack(">I", await reader.readexactly(4))
        return await reader.readexactly(size)

    def _answer(self, fields: list[str]) -> list[Frame]:
        msg_id = int(fields[0])
        if msg_id in self.handlers:
            return self.handlers[msg_id](fields)
        if msg_id == 71:  # startApi
            return [("9", "1", str(self.next_order_id)), ("15", "1", ACCOUNT)]
        if msg_id == 61:  # reqPositions
            return [("62", "1")]
        if msg_id in (5, 16):  # reqOpenOrders, reqAllOpenOrders
            return [("53", "1")]
        if msg_id == 99:  # reqCompletedOrders
            return [("102",)]
        if msg_id == 6:  # reqAccountUpdates
            return [("54", "1", ACCOUNT)]
        if msg_id == 76:  # reqAccountUpdatesMulti
            return [("74", "1", fields[2])]
        if msg_id == 7:  # reqExecutions: details, commission reports, end marker
            req_id = fields[2]
            details = [tuple(f.format(req_id=req_id) for f in d) for d, _ in self.executions]
            return [*details, *(r for _, r in self.executions), ("55", "1", req_id)]
        if msg_id == 3:  # placeOrder
            return self.on_place(fields)
        if msg_id == 4:  # cancelOrder: TWS confirms with an orderStatus and error 202
            order_id = int(fields[2])
            return [order_status(order_id, "Cancelled", self.client_id),
                    error(order_id, 202, "Order Canceled - reason:")]  # fmt: skip
        return []  # unanswered: the caller's deadline decides
