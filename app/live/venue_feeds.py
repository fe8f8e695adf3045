"""The live bar feed from a venue (no ``--replay``): ccxt polling for crypto, TWS / IB Gateway
for stocks and forex, each through the same ``FeedWorker`` path a replayed bar takes, with the
flow pollers the model's features read (a ``SideFeed``) beside the bars.

Two callers share it: the plain worker (``venue_feed``: the source and its own ``FeedWorker``)
and the Ray feed actor (``venue_source``: the source only; the actor's ``FeedWorker`` has its
checkpoints and is restored before the bars start, so ``VenueSource.closes`` resumes after the
last stored bar of each ticker).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.clock import Clock, ReplayClock
from app.config import Settings
from app.live.feed import BarClose, FeedWorker
from app.live.live_feed import live_closes, warmup_bars
from app.live.model import SignalModel
from app.live.side_feed import SideFeed
from app.live.window_spec import WindowSpec
from app.types import BAR_INTERVAL, AssetClass, from_ns

if TYPE_CHECKING:  # the text model loads only when a headline poller runs
    from app.live.headlines import HeadlineScorer


@dataclass
class VenueFeed:
    closes: AsyncIterator[BarClose]
    side: SideFeed | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class VenueSource:
    """A venue's bars (made when they start: ``bars(resume_after)``), the flow pollers beside
    them (give ``side`` to the ``FeedWorker``) and what must be closed when the feed stops."""

    bars: Callable[[Mapping[str, datetime | None]], Any]  # VenueBars or IBBars
    stream: Callable[..., AsyncIterator[BarClose]]  # live_closes or ib_closes
    side: SideFeed | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    # around the closes: pollers that must start before the warm-up and end with the bars
    wrap: Callable[[AsyncIterator[BarClose]], AsyncIterator[BarClose]] | None = None

    def closes(
        self,
        feed: FeedWorker,
        stop: asyncio.Event,
        *,
        on_error: Callable[[str], None] = print,
        on_ready: Callable[[], None] | None = None,
    ) -> AsyncIterator[BarClose]:
        """``feed``'s bar closes until ``stop``: a ticker the feed already holds bars of (a
        restored worker) catches up after its last bar, the others warm up from the venue."""
        last = feed.resume_point().bars_after
        resume = {s: None if ns is None else from_ns(ns) for s, ns in last.items()}
        warmup = warmup_bars(feed.window)
        closes = self.stream(
            self.bars(resume), feed, stop, warmup=warmup, on_error=on_error, on_ready=on_ready
        )
        return closes if self.wrap is None else self.wrap(closes)


def warmup_batch(window: WindowSpec, symbols: Sequence[str]) -> int:
    """Bars per store write: the whole warm-up in one (live_closes flushes after each poll); a
    write per warm-up bar cost ~1600 DuckDB writes at start."""
    return warmup_bars(window) * len(symbols)


def venue_feed(
    settings: Settings,
    model: SignalModel,
    classes: Mapping[str, AssetClass],
    store,  # noqa: ANN001 - the worker's TimeSeriesStore
    clock: Clock,
    stop: asyncio.Event,
    *,
    feed_url: str = "",
    on_error: Callable[[str], None] = print,
    on_ready: Callable[[], None] | None = None,
) -> VenueFeed:
    """The bar closes of the model's tickers as the venue publishes them, until ``stop``.
    ``feed_url`` replaces ccxt's public API URL; ``on_ready`` runs when the warm-up is done."""
    window = WindowSpec.from_bundle(model.bundle)
    symbols = list(classes)
    source = venue_source(settings, window, symbols, store, clock, feed_url=feed_url)
    feed = FeedWorker(
        window.spec.asset_class, symbols, window, store, scorer=headline_scorer(settings, window),
        store_every=warmup_batch(window, symbols), side=source.side,
    )  # fmt: skip
    closes = source.closes(feed, stop, on_error=on_error, on_ready=on_ready)
    return VenueFeed(closes, source.side, source.closers)


def headline_scorer(
    settings: Settings, window: WindowSpec, registry_dir: str | Path | None = None
) -> HeadlineScorer | None:
    """What scores a venue feed's polled headlines into the features, as a replay's are: the
    configured text model with the registry's promoted head, tagging by the configured
    universe. None when no headline poller runs (``live_news.rss_urls`` unset, or the model
    reads no news): without it, polled headlines were stored but never reached the windows."""
    if not (settings.live_news.rss_urls and window.spec.news_names):
        return None
    from app.live.headlines import HeadlineScorer
    from app.models.text_loader import cached_sentiment_model

    registry = Path(registry_dir or settings.registry_dir)
    text = cached_sentiment_model(settings.sentiment, registry)
    return HeadlineScorer(text, settings.universe, window.impact_model)


def venue_source(
    settings: Settings,
    window: WindowSpec,
    symbols: Sequence[str],
    store,  # noqa: ANN001 - a TimeSeriesStore, or a RemoteStore (the Ray store actor)
    clock: Clock,
    *,
    feed_url: str = "",
) -> VenueSource:
    """The venue of ``window``'s asset class for ``symbols``: ccxt (``settings.ccxt``;
    ``feed_url`` replaces its public API URL) for crypto, TWS / IB Gateway (``settings.ib``)
    for stocks and forex; connected when the bars start (ccxt lists its markets now)."""
    symbols = list(symbols)
    if window.spec.asset_class is not AssetClass.CRYPTO:
        return _ib_source(settings, window, symbols, store, clock)
    from app.live.venue_bars import VenueBars, ccxt_markets
    from app.sources.ccxt_source import CcxtSource

    urls = {"public": feed_url} if feed_url else None
    source = CcxtSource.from_settings(settings.ccxt, api_urls=urls, clock=clock.now)
    markets = ccxt_markets(symbols, list(source.exchange.load_markets()))
    closers: list[Callable[[], None]] = []
    news = _news_pollers(settings, window, closers)
    side = _print_feed(source.exchange, markets, window, store, clock, news)

    def bars(resume_after: Mapping[str, datetime | None]) -> VenueBars:
        return VenueBars(source, markets, clock.now, resume_after=resume_after)

    return VenueSource(bars, live_closes, side, closers)


def _ib_source(settings, window, symbols, store, clock) -> VenueSource:  # type: ignore[no-untyped-def]
    """Bars from TWS / IB Gateway (settings' ib.host / port / client_id); for stocks the flow
    pollers beside them, the tick-by-tick prints on the bars' connection."""
    from app.live.ib_bars import IBBars, ib_closes
    from app.sources.ib_source import IBSource

    asset_class = window.spec.asset_class
    closers: list[Callable[[], None]] = []
    side, prints = None, None
    source = IBSource(settings.ib, clock=clock.now)
    news = _news_pollers(settings, window, closers)
    if asset_class is AssetClass.STOCKS or news:
        side, prints = _stock_flow_feed(settings, window, symbols, store, clock, closers, source,
                                        news)  # fmt: skip

    def bars(resume_after: Mapping[str, datetime | None]) -> IBBars:
        return IBBars(source, symbols, asset_class, clock.now, resume_after=resume_after)

    wrap = None
    if prints is not None:  # subscribed and backfilled before the warm-up's first bar
        from app.live.ib_print_poller import with_prints

        def wrap(closes: AsyncIterator[BarClose]) -> AsyncIterator[BarClose]:
            return with_prints(prints, store, closes)  # type: ignore[arg-type]

    return VenueSource(bars, ib_closes, side, closers, wrap)


def _news_pollers(settings: Settings, window: WindowSpec, closers: list) -> list[object]:  # type: ignore[type-arg]
    """Headlines (``live_news.rss_urls``) and the class's Fear & Greed (``live_news.fear_greed``)
    when the model reads them, on a bounded client (a poll runs on the bar loop)."""
    from app.live.news_pollers import FearGreedPoller, NewsFeedPoller
    from app.sources.http import HttpClient, HttpPolicy

    cfg, spec = settings.live_news, window.spec
    fear_greed = cfg.fear_greed and bool(spec.fear_greed_series)
    if not (cfg.rss_urls and spec.news_names) and not fear_greed:
        return []
    client = HttpClient(HttpPolicy(timeout_s=5.0, retries=0))
    closers.append(client.close)
    pollers: list[object] = []
    if cfg.rss_urls and spec.news_names:
        every = timedelta(minutes=cfg.news_every_minutes)
        pollers.append(NewsFeedPoller(client, cfg.rss_urls, every=every))
    if fear_greed:
        crypto = spec.asset_class is AssetClass.CRYPTO
        base = cfg.alternative_me_base_url if crypto else cfg.cnn_base_url
        every = timedelta(minutes=cfg.fear_greed_every_minutes)
        pollers.append(FearGreedPoller(client, spec.asset_class, base, every=every))
    return pollers


def _stock_flow_feed(settings, window, symbols, store, clock, closers, source, news=()):  # type: ignore[no-untyped-def]  # noqa: E501
    """FINRA's daily off-exchange volume (``dark_pool_ratio``) from the warm-up's first day,
    the weekly ATS file (``inst_volume``) when ``flow.ats_file`` names one, and IB's
    tick-by-tick prints (``trade_print`` / ``block_trade``) on ``source``'s connection; polled
    on their own cadence beside the bars. (None, None) when the model reads none of them; the
    prints poller comes back too (it starts before the warm-up)."""
    from app.live.ib_bars import warmup_days
    from app.live.ib_print_poller import IBPrintPoller
    from app.live.side_feed import AtsWeeklyPoller, FinraDailyPoller
    from app.sources.http import HttpClient, HttpPolicy
    from app.sources.trade_prints import BlockRule

    kinds, flow = window.spec.flow_kinds, settings.flow
    start = clock.now() - timedelta(
        days=warmup_days(warmup_bars(window), AssetClass.STOCKS)
    )  # the warm-up's IB look-back
    pollers: list[object] = list(news)  # headlines and Fear & Greed (any class)
    if "dark_pool_ratio" in kinds:
        # bounded: a poll runs on the bar loop, and FINRA down must not hold a bar close
        client = HttpClient(HttpPolicy(timeout_s=5.0, retries=0))
        closers.append(client.close)
        pollers.append(
            FinraDailyPoller(client, symbols, since=start.date(), base_url=flow.finra_base_url)
        )
    if "inst_volume" in kinds and flow.ats_file:
        pollers.append(AtsWeeklyPoller(flow.ats_file, symbols))
    prints = None
    stocks = window.spec.asset_class is AssetClass.STOCKS
    if stocks and kinds & {"trade_print", "block_trade"} and flow.ib_prints:
        rule = BlockRule(measure="size", percentile=flow.block_percentile, floor=flow.block_floor)
        prints = IBPrintPoller(source, symbols, clock.now, rule=rule,
                               backfill=timedelta(minutes=flow.prints_backfill_minutes),
                               backfill_pages=flow.prints_backfill_pages)  # fmt: skip
        pollers.append(prints)
    if not pollers:
        return None, None
    # The pollers' "now" is the close of the bar being taken: through the warm-up's history
    # a day's ratio is computed once that day's bars are stored (at the wall clock every
    # warm-up day would be asked for at the first bar, before any of its volume is known), and
    # a backfilled print reaches the first bar closing at or after it; live, a bar is taken at
    # its close, so this is the wall clock at each bar close.
    return SideFeed(pollers, store, ReplayClock(start)), prints  # type: ignore[arg-type]


def _print_feed(exchange, markets, window, store, clock, news=()) -> SideFeed | None:  # type: ignore[no-untyped-def]  # noqa: E501
    """The venue's public trade prints (trade_print / block_trade events), polled every minute
    per market from the warm-up's start, when the model reads flow features built from them;
    beside them the ``news`` pollers."""
    from app.live.side_feed import CcxtPrintPoller

    pollers: list[object] = list(news)
    if window.spec.flow_kinds & {"trade_print", "block_trade"}:
        since = clock.now() - (warmup_bars(window) + 1) * BAR_INTERVAL
        pollers += [CcxtPrintPoller(exchange, m, since=since) for m in markets.values()]
    return SideFeed(pollers, store, clock) if pollers else None  # type: ignore[arg-type]
