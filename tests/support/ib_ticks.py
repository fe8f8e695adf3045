"""Trade ticks on the loopback TWS (tests/unit/broker/ib_loopback.py), beside ``IBHistory``.

``reqHistoricalTicks`` (incoming 96) is answered with one HISTORICAL_TICKS_LAST frame (98): the
ticks of the symbol from ``startDateTime`` on, at most ``numberOfTicks`` and then the rest of
the last second (as TWS completes a second), none after the clock's now. ``reqTickByTickData``
(97) opens a subscription that ``publish()`` serves with TICK_BY_TICK frames (99) for every
tick stamped up to the clock's now not sent yet (TWS never replays the past: a subscription
starts at its request); ``cancelTickByTickData`` (98) ends it. ``reqContractDetails`` (9; a
tick-by-tick request needs the contract's conId) is answered with one CONTRACT_DATA (10) of a
SMART/USD stock and its end (52). Layouts as ib_async's decoder reads them at server version 176:
9 = version, reqId, the contract's 12, includeExpired, secIdType, secId, issuerId;
10 (out) = reqId, symbol, secType, lastTimes, strike, right, exchange, currency, localSymbol,
marketName, tradingClass, conId, minTick, 16 detail fields (multiplier ... evMultiplier),
numSecIds, 6 (aggGroup ... stockType), minSize, sizeIncrement, suggestedSizeIncrement;
96 = reqId, the contract's 12, includeExpired, startDateTime, endDateTime, numberOfTicks,
whatToShow, useRth, ignoreSize, miscOptions; 97 = reqId, the contract's 12, tickType,
numberOfTicks, ignoreSize;
98 (out) = reqId, n, per tick time, mask, price, size, exchange, specialConditions, then done;
99 (out) = reqId, tickType (2 = AllLast), time, price, size, mask, exchange, specialConditions.
A tick's mask: 1 = pastLimit, 2 = unreported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tests.unit.broker.ib_loopback import Frame, LoopbackTWS


@dataclass(frozen=True)
class Tick:
    time: int  # epoch seconds (TWS's resolution)
    price: float
    size: float
    mask: int = 0
    exchange: str = "NYSE"


class IBTicks:
    """Serves ``ticks`` (symbol -> ticks in time order) by ``now``."""

    def __init__(
        self, tws: LoopbackTWS, ticks: dict[str, list[Tick]], now: Callable[[], datetime]
    ) -> None:
        self.tws = tws
        self.ticks = ticks
        self.now = now
        self.history_requests: list[tuple[str, str]] = []  # (symbol, startDateTime)
        self.subs: dict[str, str] = {}  # reqId -> symbol
        self.subscribed: list[str] = []  # every reqTickByTickData's symbol, in order
        self._sent: dict[str, int] = {}  # reqId -> how many of the symbol's ticks are behind it
        tws.handlers[9] = self._details
        tws.handlers[96] = self._history
        tws.handlers[97] = self._subscribe
        tws.handlers[98] = self._cancel

    def _details(self, fields: list[str]) -> list[Frame]:
        req_id, symbol = fields[2], fields[4]
        con_id = str(1000 + sorted(self.ticks).index(symbol)) if symbol in self.ticks else "0"
        if con_id == "0":
            return [("52", "1", req_id)]  # no such contract: no details
        head = (symbol, "STK", "", "0", "", "SMART", "USD", symbol, "NMS", symbol, con_id, "0.01")
        details = ("", "LMT,MKT", "SMART,NYSE", "1", "0", symbol, "NASDAQ", *[""] * 9, "0")
        return [("10", req_id, *head, *details, *[""] * 6, "1", "1", "100"), ("52", "1", req_id)]

    def _history(self, fields: list[str]) -> list[Frame]:
        req_id, symbol, start = fields[1], fields[3], fields[15]
        self.history_requests.append((symbol, start))
        t0 = int(datetime.strptime(start, "%Y%m%d %H:%M:%S UTC").replace(tzinfo=UTC).timestamp())
        n, now = int(fields[17]), self.now().timestamp()
        rows = [t for t in self.ticks.get(symbol, []) if t0 <= t.time <= now]
        if len(rows) > n:  # the whole of the last second
            rows = [t for t in rows if t.time <= rows[n - 1].time]
        flat: list[str] = []
        for t in rows:
            flat += [str(t.time), str(t.mask), f"{t.price}", f"{t.size}", t.exchange, ""]
        return [("98", req_id, str(len(rows)), *flat, "1")]

    def _subscribe(self, fields: list[str]) -> list[Frame]:
        req_id, symbol = fields[1], fields[3]
        self.subs[req_id] = symbol
        self.subscribed.append(symbol)
        now = self.now().timestamp()
        self._sent[req_id] = sum(t.time <= now for t in self.ticks.get(symbol, []))
        return []

    def _cancel(self, fields: list[str]) -> list[Frame]:
        self.subs.pop(fields[1], None)
        return []

    def publish(self) -> int:
        """TICK_BY_TICK frames of every tick up to now not sent yet (ticks are appended in time
        order); how many were sent."""
        now, sent = self.now().timestamp(), 0
        for req_id, symbol in self.subs.items():
            ticks = self.ticks.get(symbol, [])[self._sent[req_id] :]
            new = [t for t in ticks if t.time <= now]
            self.tws.send_all(*(("99", req_id, "2", str(t.time), f"{t.price}", f"{t.size}",
                                 str(t.mask), t.exchange, "") for t in new))  # fmt: skip
            self._sent[req_id] += len(new)
            sent += len(new)
        return sent
