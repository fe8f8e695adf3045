"""``IBBars``: closed 5-minute bars of several stocks or forex pairs from TWS / IB Gateway.

The IB counterpart of ``VenueBars`` with the same contract for ``live_closes`` (``warmup``,
``poll``, ``due``, ``clock``), its two reads async because ib_async runs on the worker's event
loop. One ``keepUpToDate`` request per ticker does both jobs: its first answer is the history
the warm-up takes (the last ``bars`` closed bars), and IB keeps appending to the same list as
bars form. ``poll`` (at each bar close plus a grace) takes the bars closed since the last one
taken: a bar is closed once its five minutes are over by the clock (the rule of
``IBSource.history``); the grace lets IB's ~5-second update cadence start the next bar, so the
closed one carries its last revision. A bar never comes twice (only bars after the last taken
``ts``), and a hole (the list jumps past ``last + 5m``, as after a reconnect or an update IB
never sent) is refilled from a plain history request before anything later is taken. For
stocks the overnight jump costs one such request per day; IB sends no bar for a 5 minutes
without a trade, so a refill that finds nothing accepts the hole.

IB drops API clients at its nightly restart: a poll that finds the connection gone reconnects
and subscribes again from the last bar taken (its first answer refills the gap). The same for a
subscription IB ended while the socket stayed up: error 1101 (connectivity restored, data lost:
every subscription) or an error naming one subscription's request (e.g. 162). When TWS does
not answer, ``SourceUnavailable`` goes to ``live_closes``, which reports it through
``on_error`` and asks again at the next close.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta

from ib_async import BarData, BarDataList

from app.errors import InputError
from app.live.feed import BarClose, FeedWorker
from app.live.venue_bars import next_close, ordered
from app.sources import SourceUnavailable
from app.sources.ib_source import IBSource, bar_from_ib, feed_for, forming
from app.types import BAR_INTERVAL, AssetClass, Bar, InvalidField, require_utc

log = logging.getLogger(__name__)

# bars per trading day: stocks' regular session 6.5 h, forex 24 h (5 days a week)
BARS_PER_DAY = {AssetClass.STOCKS: 78, AssetClass.FOREX: 288}
MAX_SECONDS = 86_400  # IB's "S" durations go up to one day
DATA_LOST = 1101  # connectivity restored, market data lost: every subscription is gone
NOTICES = frozenset({1100, 1102})  # connectivity lost / restored with data kept: wait


def warmup_days(bars: int, asset_class: AssetClass) -> int:
    """Calendar days that hold at least ``bars`` closed bars: the trading days they span,
    stretched over weekends (5 of 7 days) plus 3 days for a long weekend or holiday."""
    if bars < 1:
        raise InputError(f"warm-up bars={bars!r}: must be >= 1")
    trading_days = math.ceil((bars + 1) / BARS_PER_DAY[AssetClass(asset_class)])
    return math.ceil(trading_days * 7 / 5) + 3


def warmup_duration(bars: int, asset_class: AssetClass) -> str:
    """The IB ``durationStr`` of ``warmup_days``."""
    return f"{warmup_days(bars, asset_class)} D"


def duration_since(last: datetime, now: datetime) -> str:
    """An IB ``durationStr`` back from ``now`` to just before the bar after ``last``."""
    seconds = math.ceil((now - last).total_seconds()) + int(BAR_INTERVAL.total_seconds())
    if seconds <= MAX_SECONDS:
        return f"{max(seconds, 60)} S"
    return f"{math.ceil(seconds / MAX_SECONDS) + 1} D"


def resubscribe_duration(last: datetime, now: datetime, asset_class: AssetClass) -> str:
    """Back to ``last``, but never shorter than a few trading days: a narrow window over a
    closed market (a weekend, a night for stocks) would answer no bars at all."""
    floor = warmup_duration(1, asset_class)
    if (now - last).days + 1 < int(floor.split()[0]):
        return floor
    return duration_since(last, now)


class IBBars:
    """Closed bars of ``symbols`` (one asset class: stocks or forex) from ``source``."""

    def __init__(
        self,
        source: IBSource,
        symbols: Sequence[str],
        asset_class: AssetClass,
        clock: Callable[[], datetime],
        *,
        grace: timedelta = timedelta(seconds=6),
        resume_after: Mapping[str, datetime | None] | None = None,
    ) -> None:
        if not symbols or len(set(symbols)) != len(symbols):
            raise InputError(f"symbols={list(symbols)!r}: need distinct symbols")
        if grace < timedelta(0):
            raise InputError(f"grace={grace!r}: must be >= 0")
        self.asset_class = AssetClass(asset_class)
        self.has_volume = feed_for(self.asset_class).has_volume  # stocks or forex, else InputError
        self.source = source
        self.symbols = tuple(symbols)
        self.clock = clock
        self.grace = grace
        self.last: dict[str, datetime | None] = dict.fromkeys(self.symbols)
        for symbol, ts in (resume_after or {}).items():  # a restored feed's last stored bars
            if symbol in self.last and ts is not None:
                self.last[symbol] = require_utc("IBBars", "resume_after", ts)
        self.rejected: dict[str, dict[str, int]] = {}
        self.refills = 0  # history requests that filled a hole
        self._subs: dict[str, BarDataList] = {}
        source.ib.errorEvent += self._on_ib_error  # held weakly: lives as long as this object

    async def warmup(self, bars: int) -> list[Bar]:
        """Subscribe every ticker; the last ``bars`` closed bars of each, oldest first (of a
        ticker resumed from a stored bar: every closed bar after it)."""
        duration = warmup_duration(bars, self.asset_class)
        out: list[Bar] = []
        for symbol in self.symbols:
            last = self.last[symbol]
            if last is None:
                sub = await self._subscribe(symbol, duration)
                out += self._take(symbol, self._closed(symbol, sub)[-bars:])
            else:
                back = resubscribe_duration(last, self.clock(), self.asset_class)
                out += self._take(symbol, self._closed(symbol, await self._subscribe(symbol, back)))
        return ordered(out)

    async def poll(self) -> list[Bar]:
        """Every bar closed since the last one taken, per ticker, holes refilled. Nothing is
        taken unless every ticker answered (a failure leaves all to the next poll: no loss)."""
        if self._subs and not self.source.ib.isConnected():
            log.warning("IB connection lost; subscribing again from the last bar taken")
            self._subs.clear()  # ib_async forgets its subscriptions on a disconnect
        fresh: dict[str, list[Bar]] = {}
        for symbol in self.symbols:
            sub = self._subs.get(symbol)
            answered = sub is None  # a new subscription's first answer is history since last
            if sub is None:
                last = self.last[symbol]
                duration = (
                    resubscribe_duration(last, self.clock(), self.asset_class)
                    if last is not None
                    else warmup_duration(1, self.asset_class)
                )
                sub = await self._subscribe(symbol, duration)
            new = self._closed(symbol, sub)
            if not answered and self._has_hole(symbol, new):
                new = await self._refill(symbol, new)
            fresh[symbol] = new
        return ordered([b for symbol, new in fresh.items() for b in self._take(symbol, new)])

    def due(self) -> datetime:
        """When the next bar closes (by the clock), plus the grace."""
        return next_close(self.clock()) + self.grace

    def close(self) -> None:
        """Cancel the subscriptions and disconnect."""
        for sub in self._subs.values():
            self.source.cancel(sub)
        self._subs.clear()
        self.source.disconnect()

    def _on_ib_error(self, req_id: int, code: int, message: str, _contract: object) -> None:
        """Subscriptions IB ended are dropped; the next poll subscribes again from the last bar."""
        if code in NOTICES or 2100 <= code < 2200:
            return
        for symbol, sub in list(self._subs.items()):
            if code == DATA_LOST or sub.reqId == req_id:
                log.warning(
                    "IB ended the %s bars (%s: %s); subscribing again", symbol, code, message
                )
                self.source.cancel(sub)
                del self._subs[symbol]

    async def _subscribe(self, symbol: str, duration: str) -> BarDataList:
        try:
            sub = await self.source.request(
                symbol, self.asset_class, duration=duration, keep_up_to_date=True
            )
        except (ConnectionError, TimeoutError) as exc:  # dropped while asking
            self.source.disconnect()
            raise SourceUnavailable(
                f"IB at {self.source.address}: {symbol} bars not answered ({exc!r})"
            ) from exc
        if not sub:  # ib_async's answer to a timeout (or IB's to a contract without data)
            self.source.cancel(sub)
            raise SourceUnavailable(
                f"IB at {self.source.address}: no {symbol} bars within "
                f"{self.source.request_timeout:g} s (durationStr {duration!r})"
            )
        self._subs[symbol] = sub
        return sub

    def _closed(self, symbol: str, bars: Sequence[BarData]) -> list[Bar]:
        """The closed bars of an IB list after the last taken, as Bars (bad ones counted)."""
        now, last = self.clock(), self.last[symbol]
        out: list[Bar] = []
        for raw in bars:
            if forming(raw, now):
                continue
            try:
                bar = bar_from_ib(raw, symbol, has_volume=self.has_volume)
            except InvalidField as exc:
                log.warning("IB bar rejected: %s", exc)
                per = self.rejected.setdefault(symbol, {})
                per[exc.reason] = per.get(exc.reason, 0) + 1
                continue
            if last is None or bar.ts > last:
                out.append(bar)
        return out

    def _has_hole(self, symbol: str, new: Sequence[Bar]) -> bool:
        prev = self.last[symbol]
        for bar in new:
            if prev is not None and bar.ts - prev > BAR_INTERVAL:
                return True
            prev = bar.ts
        return False

    async def _refill(self, symbol: str, new: Sequence[Bar]) -> list[Bar]:
        """The hole's bars from a history request, merged with ``new`` by ts (IB's revision
        wins over the subscription's for a bar both hold)."""
        last = self.last[symbol]
        assert last is not None  # a hole has a start
        self.refills += 1
        try:
            raw = await self.source.request(
                symbol, self.asset_class, duration=duration_since(last, self.clock())
            )
        except (ConnectionError, TimeoutError) as exc:
            raise SourceUnavailable(
                f"IB at {self.source.address}: {symbol} refill ({exc!r})"
            ) from exc
        by_ts = {b.ts: b for b in new}
        by_ts.update({b.ts: b for b in self._closed(symbol, raw)})
        return [by_ts[t] for t in sorted(by_ts)]

    def _take(self, symbol: str, bars: Sequence[Bar]) -> list[Bar]:
        last = self.last[symbol]
        taken = [b for b in bars if last is None or b.ts > last]
        if taken:
            self.last[symbol] = taken[-1].ts
        return taken


async def ib_closes(bars: IBBars, feed: FeedWorker, stop, **kwargs) -> AsyncIterator[BarClose]:  # type: ignore[no-untyped-def]
    """``live_closes`` over ``bars``; the subscriptions end with it."""
    from app.live.live_feed import live_closes

    try:
        async for close in live_closes(bars, feed, stop, **kwargs):
            yield close
    finally:
        bars.close()
