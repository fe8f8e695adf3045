"""Recent bars and scored headlines per ticker, for the control panel's charts.

The v1 API (``app.serve.api``) serves signals and the account but no prices; the panel's
candlestick and headline list need them. ``MarketTape`` keeps the last ``max_bars`` bars and
``max_headlines`` headlines per ticker in memory (the feed side records them as they arrive),
and ``market_router`` serves them under the same auth as the rest of ``/v1``:

    api = build_api(view, settings)
    api.include_router(market_router(tape, view.tickers()))

A read never touches a file or the model. Thread-safe: the loop records from its own thread.
"""

import dataclasses
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict

from app.serve.auth import READ
from app.serve.schemas import TICKER_PATTERN
from app.types import Bar, NewsItem


@dataclass(frozen=True, slots=True)
class ScoredHeadline:
    """A headline as the text model scored it (``sentiment`` in [-1, 1], None if unscored)."""

    item: NewsItem
    sentiment: float | None
    topics: tuple[str, ...] = ()


class MarketTape:
    """The last bars and headlines of each ticker, oldest first."""

    def __init__(self, max_bars: int = 1000, max_headlines: int = 200) -> None:
        if max_bars < 1 or max_headlines < 1:
            raise ValueError(f"max_bars={max_bars!r}, max_headlines={max_headlines!r}: >= 1")
        self.max_bars = max_bars
        self.max_headlines = max_headlines
        self._bars: dict[str, deque[Bar]] = {}
        self._news: dict[str, deque[ScoredHeadline]] = {}
        self._lock = threading.Lock()

    def record_bar(self, bar: Bar) -> None:
        """Append a bar; a bar at the last bar's ts replaces it, an older one is ignored."""
        with self._lock:
            bars = self._bars.setdefault(bar.symbol, deque(maxlen=self.max_bars))
            if bars and bar.ts < bars[-1].ts:
                return
            if bars and bar.ts == bars[-1].ts:
                bars[-1] = bar
            else:
                bars.append(bar)

    def record_headline(self, headline: ScoredHeadline) -> None:
        """File a headline under each of its symbols."""
        with self._lock:
            for symbol in headline.item.symbols:
                self._news.setdefault(symbol, deque(maxlen=self.max_headlines)).append(headline)

    def bars(self, ticker: str, limit: int) -> list[Bar]:
        with self._lock:
            return list(self._bars.get(ticker, ()))[-limit:]

    def headlines(self, ticker: str, limit: int) -> list[ScoredHeadline]:
        """Newest first."""
        with self._lock:
            rows = list(self._news.get(ticker, ()))
        rows.sort(key=lambda h: h.item.published_at, reverse=True)
        return rows[:limit]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class BarOut(_Out):
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


class BarsOut(_Out):
    ticker: str
    bars: list[BarOut]


class HeadlineOut(_Out):
    id: str
    published_at: datetime
    source: str
    title: str
    sentiment: float | None
    topics: list[str]


class HeadlinesOut(_Out):
    ticker: str
    headlines: list[HeadlineOut]


def market_router(tape: MarketTape, tickers: Sequence[str]) -> APIRouter:
    """``GET /v1/bars/{ticker}?limit=`` and ``GET /v1/headlines/{ticker}?limit=`` (read role)."""
    known = frozenset(tickers)
    router = APIRouter(prefix="/v1", dependencies=[READ], tags=["market"])
    Ticker = Annotated[str, Path(pattern=TICKER_PATTERN)]  # noqa: N806
    BarLimit = Annotated[int, Query(ge=1, le=tape.max_bars)]  # noqa: N806
    NewsLimit = Annotated[int, Query(ge=1, le=tape.max_headlines)]  # noqa: N806

    def _check(ticker: str) -> None:
        if ticker not in known:
            raise HTTPException(404, f"unknown ticker={ticker!r}")

    @router.get("/bars/{ticker}", responses={404: {"description": "unknown ticker"}})
    async def bars(ticker: Ticker, limit: BarLimit = 300) -> BarsOut:
        """The ticker's last bars (open time ``ts``), oldest first."""
        _check(ticker)
        rows = [
            BarOut(ts=b.ts, open=b.open, high=b.high, low=b.low, close=b.close, volume=b.volume)
            for b in tape.bars(ticker, limit)
        ]
        return BarsOut(ticker=ticker, bars=rows)

    @router.get("/headlines/{ticker}", responses={404: {"description": "unknown ticker"}})
    async def headlines(ticker: Ticker, limit: NewsLimit = 20) -> HeadlinesOut:
        """The ticker's last headlines with the text model's sentiment and topics, newest first."""
        _check(ticker)
        rows = [
            HeadlineOut(
                id=h.item.id,
                published_at=h.item.published_at,
                source=h.item.source,
                title=h.item.title,
                sentiment=h.sentiment,
                topics=list(h.topics) or ([h.item.topic] if h.item.topic else []),
            )
            for h in tape.headlines(ticker, limit)
        ]
        return HeadlinesOut(ticker=ticker, headlines=rows)

    return router


class TapeScorer:
    """Wraps the feed's headline scorer (``app.live.headlines.HeadlineScorer``): every batch it
    scores is also filed on the tape, one row per tagged symbol, with the model's sentiment and
    the topics whose intensity reaches ``topic_min``. Scoring itself is unchanged."""

    def __init__(self, scorer: object, tape: MarketTape, topic_min: float = 0.5) -> None:
        self.scorer = scorer
        self.tape = tape
        self.topic_min = topic_min

    def __getattr__(self, name: str) -> object:  # batches, model, ... of the wrapped scorer
        return getattr(self.scorer, name)

    def score(self, items: Sequence[NewsItem]) -> list:
        rows = self.scorer.score(items)  # type: ignore[attr-defined]
        by_id = {i.id: i for i in items}
        for row in rows:
            news = row.news
            item = by_id.get(news.news_id)
            if item is None:
                continue
            topics = sorted(
                (t for t, v in news.topics.items() if v >= self.topic_min),
                key=lambda t: -news.topics[t],
            )
            tagged = dataclasses.replace(item, symbols=(news.symbol,))
            self.tape.record_headline(ScoredHeadline(tagged, news.score, tuple(topics)))
        return rows
