"""``IBPrintPoller``: stock trade prints from TWS / IB Gateway tick by tick, as a side poller.

One ``reqTickByTickData(contract, "AllLast", 0, False)`` per ticker on the connection the bars
use (the ``IBSource``'s ``IB``): ib_async puts each TCP read's ticks in ``ticker.tickByTicks``
and fires ``pendingTickersEvent``; the poller maps them (``ib_tick_prints``) into a buffer as
they come. ``poll(now, store)`` hands back the buffered prints with ``ts <= now`` as
``trade_print`` and ``block_trade`` events (``print_events``); later ones wait for a later poll.
A print's ``ts`` = ``published_at`` = its tick time. ib_async stamps a live tick with the arrival
of its TCP read (a little after the exchange's time, so a print is never used before it was
known), and the ticks of one read share that instant: they are one event, sizes summed, as every
print source merges the prints of one instant.

Start (``await start(store)``, before the bars' warm-up): the newest stored ``trade_print`` of
each ticker and the stored sizes seed the cursor and the block percentiles (a restarted feed
classifies as one uninterrupted run would); each contract is qualified (``reqContractDetails``:
ib_async keys a tick-by-tick ticker on the conId) and subscribed; then the stretch from
max(newest stored print, now - ``backfill``) to the subscription is read with
``reqHistoricalTicks(..., "TRADES")`` forward, 1000 ticks a page (IB completes a page's last
second, so the next page starts one second after it), at most ``backfill_pages`` pages. IB's
tick-by-tick data never replays the past, so what lies before that stretch, or past the page
budget, is a gap (``gaps`` counts the tickers whose budget ran out); a print at or before the
newest stored one is never stored twice.

Drops: a disconnect (IB's nightly restart) and error 1101 end every subscription, an error
naming one request ends that one (e.g. 10190: too many tick-by-tick subscriptions, 10089: no
market-data permission); the next poll subscribes again (``IBBars`` has reconnected by then: a
poll runs before each new bar), except a ticker IB refused ``GIVE_UP`` times in a row with no
print between (logged as an error). A resubscription reads the stretch it missed back like the
start does, from the newest print seen (handed over, buffered, or in an earlier read-back) or
now - ``backfill`` if later, to the resubscription, in the same pages and budget (``gaps``,
``backfilled`` count it too): an asyncio task on the running loop (``poll`` runs on the bars'
loop; ``close`` cancels it). Until the task is done and the resubscription's second is over by
``SEAM``, the ticker's prints after the stretch's start wait (a live one handed over first would
move the cursor past the stretch, and its prints would be dropped as already stored); then the
stretch's prints join the buffer and the next poll hands them over in time order. The seam: a
trade just after the resubscription is read back with its exchange second (before the
resubscription instant) and also comes live (stamped at arrival): a read-back print of that
second with the price and size of a live one from the first ``SEAM`` is dropped
(``read_live_too``). Still not read back: when the newest print seen is a live one, the rest
of its second (a historical tick carries the whole second, before that print), what lies before
now - ``backfill`` or past the page budget, and what IB's historical ticks no longer hold. The
read-back prints reach the first poll after it (the bars of the gap are already taken); the
store holds them at their tick time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ib_async import Contract, Ticker

from app.errors import InputError
from app.live.feed import BarClose
from app.live.ib_bars import DATA_LOST, NOTICES
from app.live.side_feed import FlowStore
from app.sources.ib_prints import ib_tick_prints
from app.sources.ib_source import IBSource, contract_for
from app.sources.side_batch import SideBatch
from app.sources.trade_prints import BlockRule, TradePrint, merge_same_instant, print_events
from app.types import AssetClass, FlowPoint

log = logging.getLogger(__name__)

TICK_TYPE = "AllLast"
PAGE = 1000  # IB's most ticks per reqHistoricalTicks
GIVE_UP = 3  # subscriptions IB ended in a row, no print between: the ticker is left out
SEAM = timedelta(seconds=2)  # a trade of the resubscription's second has arrived live by then


@dataclass
class _Fill:
    """The read-back of one stretch while unsubscribed: prints after ``since`` and before the
    resubscription instant ``until``, gathered by ``task`` until a poll takes them."""

    since: datetime
    until: datetime
    prints: list[TradePrint] = field(default_factory=list)
    task: asyncio.Task[int] | None = None


class IBPrintPoller:
    """Trade prints of ``symbols`` (stocks) from the IB connection of ``source``."""

    def __init__(
        self,
        source: IBSource,
        symbols: Sequence[str],
        clock: Callable[[], datetime],
        *,
        rule: BlockRule | None = None,
        backfill: timedelta = timedelta(hours=1),
        backfill_pages: int = 5,
        timeout: float = 10.0,
        every: timedelta = timedelta(minutes=1),
    ) -> None:
        if not symbols or len(set(symbols)) != len(symbols):
            raise InputError(f"symbols={list(symbols)!r}: need distinct symbols")
        if backfill < timedelta(0) or backfill_pages < 0:
            raise InputError(f"backfill={backfill!r}, backfill_pages={backfill_pages!r}: >= 0")
        self.source = source
        self.symbols = tuple(symbols)
        self.clock = clock
        self.rule = rule or BlockRule(measure="size")
        if self.rule.measure != "size":  # the stored value is the size: a resume seeds sizes
            raise InputError("IBPrintPoller: the block rule must measure size")
        self.backfill = backfill
        self.backfill_pages = backfill_pages
        self.timeout = timeout
        self.every = every
        self.name = "ib_prints"
        self.cursor = True  # a print at or before the last one handed over is dropped
        self.needs_bars = False
        self.last: dict[str, datetime | None] = dict.fromkeys(self.symbols)
        self.history = {s: deque[float](maxlen=self.rule.window) for s in self.symbols}
        self.rejected: Counter[str] = Counter()
        self.backfilled = 0  # historical prints read (at start and after resubscriptions)
        self.gaps = 0  # backfills (at start, after resubscriptions) stopped on the page budget
        self.subscriptions = 0  # reqTickByTickData sent (resubscriptions included)
        self._pending: dict[str, list[TradePrint]] = {s: [] for s in self.symbols}
        self._tickers: dict[str, Ticker] = {}
        self._contracts: dict[str, Contract] = {}  # qualified (conId): tick-by-tick needs it
        self._ended: Counter[str] = Counter()  # subscriptions IB ended since the last print
        self._fills: dict[str, list[_Fill]] = {s: [] for s in self.symbols}  # not handed yet
        self._was_subscribed: set[str] = set()  # a new subscription of these reads the gap
        self._resumed = False
        ib = source.ib
        ib.pendingTickersEvent += self._on_tickers  # held weakly: as long as this object
        ib.errorEvent += self._on_ib_error
        ib.disconnectedEvent += self._on_disconnect

    async def start(self, store: FlowStore) -> None:
        """Resume from the store, subscribe, and read the stretch before the subscription."""
        self._resume(store)
        await self.source.connect()
        for symbol in self.symbols:
            await self._qualify(symbol)
        until = self.clock()
        self._subscribe_missing()
        for symbol in self.symbols:
            last = self.last[symbol]
            since = until - self.backfill
            await self._backfill(symbol, max(since, last) if last else since, until,
                                 self._pending[symbol])  # fmt: skip

    def take(self, symbol: str, ticks: Iterable[Any]) -> int:
        """Buffer ib_async ticks of ``symbol`` (``TickByTickAllLast``, ``HistoricalTickLast``)
        until a poll hands them over; how many were prints."""
        prints, rejected = ib_tick_prints(symbol, ticks)
        self._pending[symbol] += prints
        self.rejected.update(rejected)
        return len(prints)

    def poll(self, now: datetime, store: FlowStore) -> SideBatch[FlowPoint]:
        """The prints buffered with ``ts <= now`` as events; subscribes what is not."""
        self._resume(store)
        self._subscribe_missing()
        batch: SideBatch[FlowPoint] = SideBatch(f"ib:{self.source.address}:tick_by_tick")
        batch.rejected.update(self.rejected)
        self.rejected.clear()
        public: list[TradePrint] = []
        for symbol in self.symbols:
            self._release(symbol, batch.rejected)
            pending, last = self._pending[symbol], self.last[symbol]
            upto = min([now, *(f.since for f in self._fills[symbol])])  # later ones wait
            due = [p for p in pending if p.ts <= upto]
            self._pending[symbol] = [p for p in pending if p.ts > upto]
            fresh = [p for p in due if last is None or p.ts > last]
            batch.rejected["already_stored"] += len(due) - len(fresh)
            if fresh:
                public += fresh
                self.last[symbol] = max(p.ts for p in fresh)
        merged = merge_same_instant(public)
        batch.rows_read = len(public)
        batch.items = print_events(merged, self.rule, {s: list(h) for s, h in self.history.items()})
        for p in merged:
            self.history[p.symbol].append(self.rule.value(p))
        batch.rejected = +batch.rejected  # drop zero counts
        return batch

    def close(self) -> None:
        """Cancel the subscriptions (quietly when the connection is gone) and the read-backs."""
        for fill in (f for fills in self._fills.values() for f in fills):
            if fill.task is not None:
                fill.task.cancel()
        for symbol in list(self._tickers):
            with contextlib.suppress(Exception):
                self.source.ib.cancelTickByTickData(self._tickers[symbol].contract, TICK_TYPE)
        self._tickers.clear()

    def _resume(self, store: FlowStore) -> None:
        if self._resumed:
            return
        self._resumed = True
        for symbol in self.symbols:
            stored = store.read("flow", symbol)
            stored = stored[stored["kind"] == "trade_print"].sort_values("ts")
            self.history[symbol].extend(stored["value"].tolist()[-self.rule.window :])
            if len(stored):
                self.last[symbol] = stored["ts"].iloc[-1].to_pydatetime()

    def _subscribe_missing(self) -> None:
        ib = self.source.ib
        if not ib.isConnected():
            return
        for symbol, contract in self._contracts.items():
            if symbol not in self._tickers and self._ended[symbol] < GIVE_UP:
                until = self.clock()
                self._tickers[symbol] = ib.reqTickByTickData(contract, TICK_TYPE, 0, False)
                self.subscriptions += 1
                if symbol in self._was_subscribed:
                    self._read_back(symbol, until)
                self._was_subscribed.add(symbol)

    def _read_back(self, symbol: str, until: datetime) -> None:
        """Start reading the stretch from the newest print seen (handed over, buffered or being
        read back) to the resubscription at ``until``; its prints wait in a ``_Fill``."""
        seen = [until - self.backfill, *(p.ts for p in self._pending[symbol])]
        seen += [f.until for f in self._fills[symbol]]
        if (last := self.last[symbol]) is not None:
            seen.append(last)
        since = max(seen)
        if since >= until or not self.backfill_pages:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # ib_async runs on a loop: a poll outside one has no connection
            log.warning("IB %s resubscribed outside an event loop; the gap is not read", symbol)
            return
        fill = _Fill(since, until)
        fill.task = loop.create_task(self._backfill(symbol, since, until, fill.prints))
        self._fills[symbol].append(fill)

    def _release(self, symbol: str, rejected: Counter[str]) -> None:
        """Buffer the prints of the read-backs that are done and whose resubscription second is
        over by ``SEAM``: a trade of that second both read back (IB's exchange second, before
        ``until``) and delivered live (stamped at arrival, after it) is kept once, live."""
        now, fills = self.clock(), self._fills[symbol]
        for fill in list(fills):
            seam, task = fill.until.replace(microsecond=0), fill.task
            if task is None or not task.done() or now < seam + SEAM:
                continue
            fills.remove(fill)
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.error("IB %s read-back failed (%r); %d prints kept", symbol, exc,
                          len(fill.prints))  # fmt: skip
            live = Counter((p.price, p.size) for p in self._pending[symbol]
                           if fill.until <= p.ts < seam + SEAM)  # fmt: skip
            for p in fill.prints:
                if p.ts >= seam and live[(p.price, p.size)] > 0:
                    live[(p.price, p.size)] -= 1
                    rejected["read_live_too"] += 1
                else:
                    self._pending[symbol].append(p)

    async def _qualify(self, symbol: str) -> None:
        """The contract with IB's conId (a ticker IB does not know is left out, logged)."""
        try:
            details = await asyncio.wait_for(
                self.source.ib.reqContractDetailsAsync(contract_for(symbol, AssetClass.STOCKS)),
                self.timeout,
            )
        except (TimeoutError, ConnectionError) as exc:
            log.warning("IB %s contract details not answered (%r); no prints", symbol, exc)
            return
        if not details:
            log.error("IB knows no stock %s on SMART/USD; no prints", symbol)
            return
        self._contracts[symbol] = details[0].contract

    async def _backfill(
        self, symbol: str, since: datetime, until: datetime, into: list[TradePrint]
    ) -> int:
        """Append to ``into`` the prints of ``symbol`` after ``since`` and before ``until`` from
        IB's TRADES ticks; how many (also added to ``backfilled``)."""
        contract = self._contracts.get(symbol)
        if contract is None:
            return 0
        start, taken = since.replace(microsecond=0), 0
        for _ in range(self.backfill_pages):
            try:
                ticks = await asyncio.wait_for(
                    self.source.ib.reqHistoricalTicksAsync(
                        contract, start, "", PAGE, "TRADES", useRth=False
                    ),
                    self.timeout,
                )
            except (TimeoutError, ConnectionError) as exc:
                log.warning("IB %s historical ticks not answered (%r); prints from now on",
                            symbol, exc)  # fmt: skip
                return taken
            ticks = list(ticks or [])
            prints, rejected = ib_tick_prints(symbol, (t for t in ticks if since < t.time < until))
            into += prints
            self.rejected.update(rejected)
            taken += len(prints)
            self.backfilled += len(prints)
            if len(ticks) < PAGE or ticks[-1].time >= until:
                return taken
            start = ticks[-1].time.astimezone(UTC) + timedelta(seconds=1)
        if self.backfill_pages:
            self.gaps += 1
            log.warning("IB %s historical ticks: %d pages read, the later prints up to %s left "
                        "out", symbol, self.backfill_pages, until)  # fmt: skip
        return taken

    def _on_tickers(self, tickers: set[Ticker]) -> None:
        for ticker in tickers:
            symbol = ticker.contract.symbol if ticker.contract else ""
            if self._tickers.get(symbol) is not ticker:
                continue
            if self.take(symbol, ticker.tickByTicks):
                self._ended[symbol] = 0

    def _on_ib_error(self, req_id: int, code: int, message: str, _contract: object) -> None:
        if code in NOTICES or 2100 <= code < 2200:
            return
        by_id = self.source.ib.wrapper.ticker2ReqId.get(TICK_TYPE, {})
        for symbol, ticker in list(self._tickers.items()):
            if code == DATA_LOST or by_id.get(ticker) == req_id:
                if code != DATA_LOST:
                    self._ended[symbol] += 1
                again = self._ended[symbol] < GIVE_UP
                log.log(logging.WARNING if again else logging.ERROR,
                        "IB ended the %s prints (%s: %s); %s", symbol, code, message,
                        "subscribing again at the next poll" if again else
                        f"left out after {GIVE_UP} in a row")  # fmt: skip
                with contextlib.suppress(Exception):
                    self.source.ib.cancelTickByTickData(ticker.contract, TICK_TYPE)
                del self._tickers[symbol]

    def _on_disconnect(self) -> None:
        self._tickers.clear()  # ib_async forgets its tickers on a disconnect


async def with_prints(
    prints: IBPrintPoller, store: FlowStore, closes: AsyncGenerator[BarClose, None]
) -> AsyncIterator[BarClose]:
    """``closes`` after ``prints.start`` (the backfill is buffered before the warm-up's first
    bar polls it); the subscriptions end with them."""
    try:
        await prints.start(store)
        async for close in closes:
            yield close
    finally:
        prints.close()
        await closes.aclose()  # the bars' subscriptions and the connection end there
