"""Historical 5-minute bars on the loopback TWS (tests/unit/broker/ib_loopback.py).

``reqHistoricalData`` (incoming message 20) is answered with one HISTORICAL_DATA frame (17):
the bars of the requested ``durationStr`` up to the clock's now, the forming bar last, dated
in epoch seconds (formatDate=2). With keepUpToDate the request stays a subscription:
``publish()`` sends HISTORICAL_DATA_UPDATE frames (90) for every bar begun since the last one
sent, the forming one included, as TWS does while the clock moves; ``cancelHistoricalData``
(25) ends it. Field layouts as ib_async's decoder reads them at server version 176:
17 = reqId, start, end, n, then per bar date, open, high, low, close, volume, wap, count;
90 = reqId, count, date, open, close, high, low, wap, volume.
The request's fields: 20, reqId, the contract's 12 (conId, symbol, secType, lastTrade,
strike, right, multiplier, exchange, primaryExchange, currency, localSymbol, tradingClass),
includeExpired, endDateTime, barSize, durationStr, useRTH, whatToShow, formatDate,
keepUpToDate, chartOptions.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from tests.unit.broker.ib_loopback import Frame, LoopbackTWS

BAR = timedelta(minutes=5)
UNITS = {"S": 1, "D": 86_400, "W": 7 * 86_400}


@dataclass(frozen=True)
class Request:
    symbol: str
    duration: str
    what_to_show: str
    use_rth: bool
    keep_up_to_date: bool


def _symbol(fields: list[str]) -> str:
    symbol, sec_type, currency = fields[3], fields[4], fields[11]
    return symbol + currency if sec_type == "CASH" else symbol


def _seconds(duration: str) -> int:
    n, unit = duration.split()
    return int(n) * UNITS[unit]


class IBHistory:
    """Serves ``bars`` (symbol -> frame of ts, open, high, low, close, volume) by ``now``."""

    def __init__(
        self, tws: LoopbackTWS, bars: dict[str, pd.DataFrame], now: Callable[[], datetime]
    ) -> None:
        self.tws = tws
        self.bars = {s: f.assign(ts=pd.to_datetime(f["ts"], utc=True)) for s, f in bars.items()}
        self.now = now
        self.requests: list[Request] = []
        self.subs: dict[str, str] = {}  # reqId -> symbol
        self._sent: dict[str, pd.Timestamp] = {}  # reqId -> the last bar time sent
        tws.handlers[20] = self._request
        tws.handlers[25] = self._cancel

    def _visible(self, symbol: str, since: pd.Timestamp) -> pd.DataFrame:
        frame = self.bars[symbol]
        now = pd.Timestamp(self.now())
        return frame[(frame["ts"] >= since) & (frame["ts"] <= now)]

    def _request(self, fields: list[str]) -> list[Frame]:
        req_id, symbol = fields[1], _symbol(fields)
        duration, keep = fields[17], fields[21] == "1"
        self.requests.append(Request(symbol, duration, fields[19], fields[18] == "1", keep))
        since = pd.Timestamp(self.now()) - pd.Timedelta(seconds=_seconds(duration))
        rows = self._visible(symbol, since)
        if keep and len(rows):
            self.subs[req_id] = symbol
            self._sent[req_id] = rows["ts"].iloc[-1]
        flat: list[str] = []
        for r in rows.itertuples(index=False):
            flat += [str(int(r.ts.timestamp())), f"{r.open}", f"{r.high}", f"{r.low}",
                     f"{r.close}", f"{r.volume}", f"{r.close}", "7"]  # fmt: skip
        return [("17", req_id, "", "", str(len(rows)), *flat)]

    def _cancel(self, fields: list[str]) -> list[Frame]:
        self.subs.pop(fields[2], None)
        return []

    def publish(self, *, skip: frozenset[datetime] = frozenset()) -> None:
        """Update frames for every subscription: each bar begun since the last sent (the forming
        one at the clock's now last); the bars in ``skip`` are never sent (a lost update)."""
        for req_id, symbol in self.subs.items():
            rows = self._visible(symbol, self._sent[req_id])
            frames = []
            for r in rows.itertuples(index=False):
                if r.ts.to_pydatetime() in skip:
                    continue
                frames.append(("90", req_id, "7", str(int(r.ts.timestamp())), f"{r.open}",
                               f"{r.close}", f"{r.high}", f"{r.low}", f"{r.close}",
                               f"{r.volume}"))  # fmt: skip
            if len(rows):
                self._sent[req_id] = rows["ts"].iloc[-1]
            self.tws.send_all(*frames)


@contextmanager
def tws_thread(
    bars: dict[str, pd.DataFrame], now: Callable[[], datetime], ticks: dict | None = None
) -> Iterator[int]:
    """A loopback TWS serving ``bars`` (and the trade ``ticks`` of tests/support/ib_ticks.py)
    on its own event loop in a thread; yields its port."""
    from tests.support.ib_ticks import IBTicks

    loop = asyncio.new_event_loop()
    tws = LoopbackTWS()
    IBHistory(tws, bars, now)
    IBTicks(tws, ticks or {}, now)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(tws.start(), loop).result(5)
    finally:
        asyncio.run_coroutine_threadsafe(tws.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
