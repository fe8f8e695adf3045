"""Bar closes of a live venue through the feed path (``FeedWorker``), as they happen.

Start: the last ``warmup_bars(window)`` closed bars of every ticker go through the feed (store,
incremental features, windows) without being traded, except the newest bar close, which is
traded when it closed less than one bar ago (a signal on it is not stale). Then, at every bar
close plus the venue's grace, the bars closed since are polled and their closes yielded. A
venue that does not answer is reported through ``on_error`` and asked again at the next close;
the bars keep their order and none is taken twice (``VenueBars``; ``IBBars`` for TWS, whose
reads are coroutines on this loop, where ccxt's blocking ones run in a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from app.live.feed import BarClose, FeedWorker
from app.live.venue_bars import VenueBars
from app.live.window_spec import WindowSpec
from app.sources import SourceUnavailable
from app.types import BAR_INTERVAL

if TYPE_CHECKING:
    from app.live.ib_bars import IBBars


def warmup_bars(window: WindowSpec) -> int:
    """Bars of history a ticker starts from: four times the spec's longest warm-up (an EMA
    started there has forgotten its start to ~e^-8), plus the window."""
    return int(4 * window.spec.warmup_bars + window.lookback)


async def _read(method: Callable[..., Any], *args: object) -> Any:
    """An async read awaited here; a blocking one in a thread (the loop keeps serving)."""
    if inspect.iscoroutinefunction(method):
        return await method(*args)
    return await asyncio.to_thread(method, *args)


async def live_closes(
    bars: VenueBars | IBBars,
    feed: FeedWorker,
    stop: asyncio.Event,
    *,
    warmup: int,
    on_error: Callable[[str], None] = print,
    on_ready: Callable[[], None] | None = None,
) -> AsyncIterator[BarClose]:
    """Warm up, then the closes of every bar as the venue publishes it, until ``stop``;
    ``on_ready`` is called when the warm-up is done (trading starts)."""
    now = bars.clock()
    latest: BarClose | None = None
    for bar in await _read(bars.warmup, warmup):
        for close in feed.on_item(bar):
            latest = close
    feed.flush_store()
    if on_ready is not None:
        on_ready()
    if latest is not None and now - latest.close_time < BAR_INTERVAL:
        yield latest
    while not stop.is_set():
        delay = (bars.due() - bars.clock()).total_seconds()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
        try:
            new = await _read(bars.poll)
        except SourceUnavailable as exc:  # asked again at the next close
            on_error(f"{feed.asset_class.value} feed: {exc}")
            continue
        closes = [close for bar in new for close in feed.on_item(bar)]
        feed.flush_store()  # live bars reach the store as they come
        for close in closes:
            yield close
