"""Side sources a live feed polls on their own cadence: FINRA daily, ATS weekly, trade prints.

``ingest-side`` reads a source once; a live feed asks each ``SidePoller`` again and again for
what is new at ``now``, at most once per poller's ``every``. ``now`` comes from an injected
clock (``app.clock``: the wall clock live, a ``ReplayClock`` moved to each bar's close in a
replay), so a replay polls at the instants a live run would.

``SideFeed.poll_due`` writes what the due pollers return to the store's table of each item's
type (``flow``, ``news`` or ``macro``: the frames ``ingest-side`` writes, idempotent on their
keys) and returns only the items the store did not hold yet. ``SideFeed.hand_to`` gives them
to a ``FeedWorker`` as side items, which its tickers' incremental features take before the
next bar (each item waits there until its ``published_at``). So the live rows equal the batch
engine's on the stored side tables.

A source that stays down (``SourceUnavailable``) is counted and logged, and asked again at its
next cadence; the bars go on. Restart: the store is the memory. A poller resumes from what the
store holds (the prints' cursor, the block percentiles' history), and an item already stored is
never handed over again (the engines count every delivery). An item stored just before a crash
but not yet in the worker's side log is therefore missed by the live features (it is in the
store for training).
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from app.clock import Clock, ReplayClock
from app.errors import InputError
from app.sources import SourceUnavailable
from app.sources.ats_weekly import parse_ats_weekly
from app.sources.ccxt_source import store_symbol
from app.sources.dark_pool import daily_bar_volumes, dark_pool_ratios
from app.sources.flow_sources import FINRA_BASE_URL, NEW_YORK, fetch_finra_days, finra_published_at
from app.sources.side_batch import SideBatch, flow_frame, macro_frame, news_frame
from app.sources.trade_prints import BlockRule, merge_same_instant, print_events
from app.sources.trade_prints_ccxt import poll_trades
from app.types import Bar, FlowPoint, MacroPoint, NewsItem, require_utc

log = logging.getLogger(__name__)

SideItem = FlowPoint | NewsItem | MacroPoint
ItemKey = tuple[str, str, int]  # (symbol | series | news id, kind | "", ts ns): a table's key


class FlowStore(Protocol):
    """The store calls the side feed makes (a ``TimeSeriesStore``)."""

    def write(self, table: str, frame: pd.DataFrame, *, upsert: bool = False) -> int: ...

    def read(
        self,
        table: str,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame: ...

    def read_bars(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame: ...


class SidePoller(Protocol):
    """One source: ``poll`` returns what is public at ``now`` (repeats are filtered later)."""

    name: str
    every: timedelta
    cursor: bool  # True: a poll never returns an item an earlier poll (or run) returned
    needs_bars: bool  # True: a poll reads the stored bars (they are flushed first)

    def poll(self, now: datetime, store: FlowStore) -> SideBatch[Any]: ...


def _table(p: SideItem) -> str:
    return "news" if isinstance(p, NewsItem) else "macro" if isinstance(p, MacroPoint) else "flow"


def _ts(p: SideItem) -> datetime:
    return p.published_at if isinstance(p, NewsItem) else p.ts  # the news table's ts


def _key(p: SideItem) -> ItemKey:
    if isinstance(p, NewsItem):
        return (p.id, "", int(pd.Timestamp(p.published_at).value))
    name = p.name if isinstance(p, MacroPoint) else p.symbol
    return (name, getattr(p, "kind", ""), int(pd.Timestamp(p.ts).value))


def _frame(table: str, items: Sequence[Any]) -> pd.DataFrame:
    return {"news": news_frame, "macro": macro_frame, "flow": flow_frame}[table](items)


def _stored_keys(store: FlowStore, table: str, items: Sequence[SideItem]) -> set[ItemKey]:
    start = min(_ts(p) for p in items)
    end = max(_ts(p) for p in items) + timedelta(microseconds=1)
    if table == "news":  # all symbols: an item's key is its id
        frame = store.read("news", None, start, end)
        return {(str(i), "", int(t.value)) for i, t in zip(frame["id"], frame["ts"], strict=True)}
    stored: set[ItemKey] = set()
    for name in sorted({k[0] for k in map(_key, items)}):
        frame = store.read(table, name, start, end)
        kinds = frame["kind"] if table == "flow" else [""] * len(frame)
        stored |= {(name, str(k), int(t.value)) for k, t in zip(kinds, frame["ts"], strict=True)}
    return stored


@dataclass
class PollStats:
    polls: int = 0
    items_read: int = 0
    items_new: int = 0
    failures: int = 0  # polls whose source stayed down (tried again at the next cadence)
    rejected: Counter[str] = field(default_factory=Counter)


class SideFeed:
    """Runs the due pollers, stores their items, and hands the new ones to a feed worker."""

    def __init__(self, pollers: Sequence[SidePoller], store: FlowStore, clock: Clock) -> None:
        names = [p.name for p in pollers]
        if len(set(names)) != len(names):
            raise InputError(f"pollers={names!r}: names must be distinct")
        self.pollers = tuple(pollers)
        self.store = store
        self.clock = clock
        self._next: dict[str, datetime | None] = dict.fromkeys(names)
        self.stats: dict[str, PollStats] = {n: PollStats() for n in names}

    def poll_due(self) -> list[SideItem]:
        """Poll every poller whose time has come; store and return the items new to the store."""
        now = require_utc("SideFeed", "clock.now()", self.clock.now())
        out: list[SideItem] = []
        for poller in self.pollers:
            due = self._next[poller.name]
            if due is not None and now < due:
                continue
            self._next[poller.name] = now + poller.every
            stats = self.stats[poller.name]
            stats.polls += 1
            try:
                batch = poller.poll(now, self.store)
            except SourceUnavailable as exc:  # the bars go on; the cursor did not move
                stats.failures += 1
                log.warning("%s: %s; next poll at %s", poller.name, exc, self._next[poller.name])
                continue
            stats.items_read += len(batch.items)
            stats.rejected.update(batch.rejected)
            new = self._store_new(batch.items, look_up=not poller.cursor)
            stats.items_new += len(new)
            out += new
        return out

    def _store_new(self, items: Sequence[SideItem], *, look_up: bool) -> list[SideItem]:
        out: list[SideItem] = []
        for table in ("flow", "news", "macro"):
            unique = list({_key(p): p for p in items if _table(p) == table}.values())
            if not unique:
                continue
            if look_up:  # (a cursor's items are new by construction)
                stored = _stored_keys(self.store, table, unique)
                unique = [p for p in unique if _key(p) not in stored]
            if unique:
                self.store.write(table, _frame(table, unique))
            out += unique
        return out

    def hand_to(self, worker: Any) -> int:
        """Poll what is due and pass the new items to ``worker.on_polled`` (a ``FeedWorker``)."""
        items = self.poll_due()
        worker.on_polled(items)
        return len(items)

    def before_bar(self, bar: Bar, worker: Any) -> int:
        """``FeedWorker``'s hook, called with each new bar before the bar is taken: a replay
        clock first moves to the bar's close (when the bar is known), then the due sources are
        polled, so what was public by that close reaches the bar's row."""
        if isinstance(self.clock, ReplayClock):
            self.clock.on_bar(bar)
        now = self.clock.now()
        due = [p for p in self.pollers if (d := self._next[p.name]) is None or now >= d]
        if any(p.needs_bars for p in due):
            worker.flush_store()  # a source may read the stored bars (FINRA: the day's volume)
        return self.hand_to(worker)


# --------------------------------------------------------------------------- pollers


class CcxtPrintPoller:
    """Public prints of one market through ccxt ``fetch_trades``, resumed from a cursor.

    The cursor starts after the newest stored ``trade_print`` of the symbol (else ``since``);
    block percentiles start from the stored print sizes; so a restarted feed classifies and
    continues as one uninterrupted poll would (``ingest-side --source ccxt_trades`` likewise).
    Prints stamped after ``now`` (a recorded tape replayed) wait for a later poll.
    """

    def __init__(
        self,
        exchange: Any,
        market: str,
        *,
        since: datetime,
        rule: BlockRule | None = None,
        every: timedelta = timedelta(minutes=1),
        max_pages: int = 10,
    ) -> None:
        self.exchange = exchange
        self.market = market
        self.symbol = store_symbol(market)
        self.since = require_utc("CcxtPrintPoller", "since", since)
        self.rule = rule or BlockRule(measure="size")
        self.every = every
        self.max_pages = max_pages
        self.name = f"ccxt_trades:{market}"
        self.cursor = True
        self.needs_bars = False
        self.cursor_ms: int | None = None
        self.history: deque[float] = deque(maxlen=self.rule.window)

    def _resume(self, store: FlowStore) -> int:
        stored = store.read("flow", self.symbol)
        stored = stored[stored["kind"] == "trade_print"].sort_values("ts")
        if self.rule.measure == "size":  # the stored value is the size
            self.history.extend(stored["value"].tolist()[-self.rule.window :])
        if len(stored):
            return int(stored["ts"].iloc[-1].value // 1_000_000) + 1
        return int(self.since.timestamp() * 1000)

    def poll(self, now: datetime, store: FlowStore) -> SideBatch[FlowPoint]:
        if self.cursor_ms is None:
            self.cursor_ms = self._resume(store)
        batch: SideBatch[FlowPoint] = SideBatch(f"{self.exchange.id}:fetch_trades:{self.market}")
        now_ms = int(now.timestamp() * 1000)
        if self.cursor_ms > now_ms:
            return batch
        got = poll_trades(self.exchange, self.market, since_ms=self.cursor_ms, now_ms=now_ms,
                          max_pages=self.max_pages)  # fmt: skip
        public = [p for p in got.prints if p.ts <= now]
        self.cursor_ms = got.resume_ms if len(public) == len(got.prints) else now_ms + 1
        merged = merge_same_instant(public)
        batch.rows_read = len(public)
        batch.items = print_events(merged, self.rule, {self.symbol: list(self.history)})
        self.history.extend(self.rule.value(p) for p in merged)
        return batch


class FinraDailyPoller:
    """FINRA's daily consolidated file per weekday, and the ``dark_pool_ratio`` from the day's
    stored bar volume. A day is asked for once its publication time (18:00 New York) has come;
    a day FINRA has no file for (a holiday's 403/404) is asked again until the next weekday's
    file is due, then given up (listed in ``missing``)."""

    def __init__(
        self,
        client: Any,
        symbols: Sequence[str],
        *,
        since: date,
        base_url: str = FINRA_BASE_URL,
        every: timedelta = timedelta(hours=1),
    ) -> None:
        if not symbols:
            raise InputError("FinraDailyPoller.symbols: need at least one symbol")
        self.client = client
        self.symbols = tuple(symbols)
        self.base_url = base_url
        self.every = every
        self.name = "finra_daily"
        self.cursor = False  # a late file may repeat a day's rows: looked up in the store
        self.needs_bars = True  # the day's consolidated volume = its stored bar volume
        self.next_day = since

    def poll(self, now: datetime, store: FlowStore) -> SideBatch[FlowPoint]:
        batch: SideBatch[FlowPoint] = SideBatch(f"finra:{self.base_url}")
        while finra_published_at(self.next_day) <= now:
            day = self.next_day
            if day.weekday() >= 5:
                self.next_day = day + timedelta(days=1)
                continue
            try:
                got = fetch_finra_days(self.client, day, day, base_url=self.base_url,
                                       symbols=self.symbols)  # fmt: skip
            except SourceUnavailable:
                if not batch.items:
                    raise
                break  # keep the days read; this one is asked again at the next poll
            if got.missing and finra_published_at(_next_weekday(day)) > now:
                break  # maybe late: ask again at the next poll
            batch.extend(got)
            batch.extend(dark_pool_ratios(got.items, self._volumes(store, day)))
            self.next_day = day + timedelta(days=1)
        return batch

    def _volumes(self, store: FlowStore, day: date) -> dict[tuple[str, date], float]:
        start = datetime.combine(day, datetime.min.time(), NEW_YORK).astimezone(UTC)
        out: dict[tuple[str, date], float] = {}
        for symbol in self.symbols:
            bars = store.read_bars(symbol, start, start + timedelta(days=1, hours=1))
            if len(bars):
                out.update(daily_bar_volumes(bars, symbol))
        return out


def _next_weekday(day: date) -> date:
    nxt = day + timedelta(days=1)
    while nxt.weekday() >= 5:
        nxt += timedelta(days=1)
    return nxt


class AtsWeeklyPoller:
    """FINRA's weekly ATS summary as a file a user refreshes (the Query API needs an account):
    re-read at each poll; its ``published_at`` (weeks after the week) gates the features."""

    def __init__(
        self, path: Path | str, symbols: Sequence[str] = (), *, every: timedelta = timedelta(days=1)
    ) -> None:
        self.path = Path(path)
        self.symbols = tuple(symbols)
        self.every = every
        self.name = f"finra_ats:{self.path.name}"
        self.cursor = False  # the whole file at every poll
        self.needs_bars = False

    def poll(self, now: datetime, store: FlowStore) -> SideBatch[FlowPoint]:
        if not self.path.is_file():
            log.warning("ATS file %s is absent; nothing polled", self.path)
            return SideBatch(str(self.path), missing=[str(self.path)])
        text = self.path.read_text(encoding="utf-8", errors="replace")
        return parse_ats_weekly(text, where=str(self.path), symbols=list(self.symbols) or None)
