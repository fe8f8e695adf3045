"""Headlines (RSS / Atom) and Fear & Greed as ``SidePoller``s a live feed polls on its cadence.

``ingest-side`` reads these sources once; here each poll re-reads them and returns only what
was not handed over yet. The publication rules are the fetchers' own: a headline counts from
its published time, a Fear & Greed value from its publication (``app.sources.macro_sources``),
and an item published after ``now`` waits for a later poll (a replayed clock never sees it
early). Restart: headlines are looked up in the store's ``news`` table by ``SideFeed``
(``cursor = False``); Fear & Greed resumes after the newest stored value of its series.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from app.errors import InputError
from app.live.side_feed import FlowStore
from app.sources import SourceUnavailable
from app.sources.macro_sources import (
    ALTERNATIVE_ME_BASE_URL,
    CNN_BASE_URL,
    CRYPTO_SERIES,
    STOCKS_SERIES,
    fetch_alternative_me,
    fetch_cnn,
)
from app.sources.news_feeds import fetch_feed
from app.sources.side_batch import SideBatch
from app.types import AssetClass, MacroPoint, NewsItem


class NewsFeedPoller:
    """The entries of RSS / Atom feeds published by ``now``; ``SideFeed`` hands over only those
    the store does not hold (``cursor = False``), so nothing is remembered here. A feed that is
    down is skipped for this poll (the others are read); all down: unavailable."""

    def __init__(
        self,
        client: Any,
        urls: Sequence[str],
        symbols: Sequence[str] = (),
        *,
        every: timedelta = timedelta(minutes=5),
    ) -> None:
        if not urls:
            raise InputError("NewsFeedPoller.urls: need at least one feed URL")
        self.client = client
        self.urls = tuple(urls)
        self.symbols = tuple(symbols)  # attached to every entry ((): the scorer tags the text)
        self.every = every
        self.name = "news_rss"
        self.cursor = False  # a restarted feed re-reads old entries: looked up in the store
        self.needs_bars = False

    def poll(self, now: datetime, store: FlowStore) -> SideBatch[NewsItem]:
        batch: SideBatch[NewsItem] = SideBatch("rss:" + ",".join(self.urls))
        down: list[SourceUnavailable] = []
        for url in self.urls:
            try:
                got = fetch_feed(self.client, url, symbols=self.symbols)
            except SourceUnavailable as exc:
                down.append(exc)
                continue
            later = [i for i in got.items if i.published_at > now]  # asked again next poll
            got.items = [i for i in got.items if i.published_at <= now]
            batch.extend(got)
            batch.rejected["published_after_now"] += len(later)
        if len(down) == len(self.urls):
            raise down[0]
        return batch


class FearGreedPoller:
    """The asset class's daily Fear & Greed (alternative.me for crypto, CNN for stocks): the
    values published by ``now`` after the newest one handed over (or stored)."""

    def __init__(
        self,
        client: Any,
        asset_class: AssetClass,
        base_url: str = "",
        *,
        every: timedelta = timedelta(hours=1),
        days: int = 10,
    ) -> None:
        if asset_class not in (AssetClass.CRYPTO, AssetClass.STOCKS):
            raise InputError(f"FearGreedPoller.asset_class={asset_class!r}: crypto or stocks")
        self.client = client
        self.asset_class = asset_class
        crypto = asset_class is AssetClass.CRYPTO
        self.series = CRYPTO_SERIES if crypto else STOCKS_SERIES
        self.base_url = base_url or (ALTERNATIVE_ME_BASE_URL if crypto else CNN_BASE_URL)
        self.every = every
        self.days = days  # the history asked for (the features cap a value's age at 2 days)
        self.name = f"fear_greed:{self.series}"
        self.cursor = True
        self.needs_bars = False
        self.last: datetime | None = None  # ts of the newest value handed over
        self._resumed = False

    def _resume(self, store: FlowStore) -> None:
        stored = store.read("macro", self.series)
        if len(stored):
            self.last = stored["ts"].max().to_pydatetime()
        self._resumed = True

    def poll(self, now: datetime, store: FlowStore) -> SideBatch[MacroPoint]:
        if not self._resumed:
            self._resume(store)
        if self.asset_class is AssetClass.CRYPTO:
            got = fetch_alternative_me(self.client, base_url=self.base_url, limit=self.days,
                                       now=now)  # fmt: skip
        else:
            start = (now - timedelta(days=self.days)).date()
            got = fetch_cnn(self.client, start=start, base_url=self.base_url, now=now)
        got.items = [
            p
            for p in got.items
            if p.published_at <= now and (self.last is None or p.ts > self.last)
        ]
        if got.items:
            self.last = max(p.ts for p in got.items)
        return got
