"""``FeedActor``: one asset class's feed (a ``FeedWorker`` and its replay source) as a Ray actor.

Created with ``FEED_ACTOR_OPTIONS`` (``max_restarts=-1``, ``max_task_retries=-1``): when the
process dies (``ray.kill(..., no_restart=False)``, a lost node), Ray starts it again, the
constructor restores the worker from its checkpoint and the store, and the interrupted
``run()`` call is retried: it continues the source from ``resume_point()``. Bar closes go to a
sink actor (``on_close.remote(bar_close)``, in order); after a restart the closes rebuilt by
``restore()`` are sent again, marked ``replayed``. With ``FeedConfig.wait_sink`` each close
waits for the sink's answer (the Serve app's handle: one bar close in the graph at a time, and
``--speed max`` goes as fast as the graph answers); ``stop()`` ends a running ``run()``.

Sources: a replay (``FeedConfig.replay``), or with ``replay=None`` the venue's live bars and the
flow pollers beside them (``app.live.venue_feeds.venue_source``, the plain worker's code: ccxt
polling with the trade prints for crypto, TWS / IB Gateway with FINRA / ATS for stocks), run on
an asyncio loop inside ``run()``. After a restart the venue bars resume after the restored
worker's last bar of each ticker (caught up before anything trades), the prints from their
stored cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from app.live.checkpoint import CheckpointDir
from app.live.feed import BarClose, FeedWorker
from app.live.replay import Replay, load_replay
from app.live.window_spec import WindowSpec

FEED_ACTOR_OPTIONS: dict[str, Any] = {
    "max_restarts": -1,
    "max_task_retries": -1,
    "max_concurrency": 2,  # stats() answers while run() streams
}


@dataclass(frozen=True)
class FeedConfig:
    asset_class: str
    replay: str | None  # CSV file / folder, simulator folder or store URL; None: the venue
    checkpoint_dir: str
    symbols: tuple[str, ...] | None = None
    store_url: str | None = None  # own store (QuestDB: each actor writes over ILP itself)
    checkpoint_every: int = 288
    store_every: int = 1
    speed: float | None = None  # bars per second per ticker; None = max
    score_news: bool = True  # load the configured sentiment model for headlines
    wait_sink: bool = False  # wait for each close's answer (a Serve handle's DeploymentResponse)
    registry_dir: str | None = None  # where the sentiment head is (default: the settings')
    # the venue (replay=None): its settings (ccxt, ib, flow; default: load_settings()), the
    # ccxt public API URL ("" = the exchange's own), and a stop this long after the warm-up
    settings: Any = None
    feed_url: str = ""
    duration_s: float | None = None


class FeedActor:
    """Lifecycle and messaging around ``FeedWorker``; no logic of its own."""

    def __init__(
        self, config: FeedConfig, window: WindowSpec, store: Any = None, sink: Any = None
    ) -> None:
        from app.actors.store_actor import RemoteStore

        self.config = config
        self.sink = sink
        self.window = window
        self.data = None
        if config.replay is not None:
            self.data = load_replay(config.replay, config.asset_class, config.symbols)
            symbols = self.data.symbols(config.asset_class)
        elif config.symbols:
            symbols = list(config.symbols)
        else:
            raise ValueError("FeedActor: a venue feed needs config.symbols")
        if store is not None:
            bar_store: Any = RemoteStore(store)
        elif config.store_url:
            from app.store import open_store

            bar_store = open_store(config.store_url)
        else:
            raise ValueError("FeedActor: pass a StoreActor handle or config.store_url")
        self.worker = FeedWorker(
            config.asset_class,
            symbols,
            window,
            bar_store,
            scorer=self._scorer(window) if config.score_news else None,
            checkpoints=CheckpointDir(config.checkpoint_dir, config.asset_class),
            checkpoint_every=config.checkpoint_every,
            store_every=config.store_every,
        )
        self.starts = 1 + _restarts_so_far()
        self.errors: list[str] = []  # the venue's failures (asked again at the next close)
        self.stopped = ""  # "duration": the venue feed's own --duration timer ended run()
        self.ready = self.data is not None  # a venue feed: once its warm-up is done
        self._stop = False
        self._wake: Callable[[], None] | None = None  # sets the running venue loop's stop
        self._in_flight: list[Any] = []  # sends not yet known to be delivered (no wait_sink)
        self._send(self.worker.restore())

    def _scorer(self, window: WindowSpec) -> Any:
        """The headline scorer: a replay's (when it has news) tags by its assets; a venue's
        polled headlines (``live_news.rss_urls``) by the configured universe."""
        from pathlib import Path

        from app.config import load_settings
        from app.live.headlines import HeadlineScorer
        from app.live.venue_feeds import headline_scorer
        from app.models.text_loader import cached_sentiment_model

        if self.data is None:
            settings = self.config.settings or load_settings()
            return headline_scorer(settings, window, self.config.registry_dir)
        if not self.data.news:
            return None
        settings = load_settings()
        registry_dir = self.config.registry_dir or settings.registry_dir
        model = cached_sentiment_model(settings.sentiment, Path(registry_dir))
        return HeadlineScorer(model, self.data.assets, window.impact_model)

    def _send(self, closes: list[BarClose]) -> None:
        """Send in order; without ``wait_sink`` the sends stay in flight until a checkpoint
        is due (a checkpoint must never pass a close the sink may not have received)."""
        if self.sink is None:
            return
        for close in closes:
            sent = self.sink.on_close.remote(close)
            if self.config.wait_sink:
                _wait(sent)
            else:
                self._in_flight.append(sent)
        if self.worker.checkpoint_due:
            self._delivered()

    def _delivered(self) -> None:
        """Wait until the sink has taken every close sent so far."""
        sent, self._in_flight = self._in_flight, []
        for ref in sent:
            _wait(ref)

    def run(self, max_items: int | None = None) -> dict[str, Any]:
        """Stream the source from the worker's resume point to its end (or ``max_items``; a
        venue's bars until ``stop()`` or ``FeedConfig.duration_s``)."""
        if self.data is None:
            return asyncio.run(_run_venue(self))
        replay = Replay(self.data, self.config.asset_class, speed=self.config.speed)
        for k, item in enumerate(replay.items(self.worker.resume_point())):
            if (max_items is not None and k >= max_items) or self._stop:
                break
            self._send(self.worker.on_item(item))
        self._delivered()
        self.worker.close()
        return self.stats()

    def stop(self) -> None:
        """End a running ``run()`` after its current item (it closes the worker and returns)."""
        self._stop = True
        wake = self._wake
        if wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop just ended
                wake()

    def stats(self) -> dict[str, Any]:
        out = {**asdict(self.worker.stats()), "starts": self.starts, "pid": os.getpid()}
        out |= {"errors": list(self.errors), "stopped": self.stopped, "ready": self.ready}
        side = self.worker.side
        if side is not None:  # per poller: polls, items read / new, failures
            out["side_polls"] = {
                name: {**vars(st), "rejected": dict(st.rejected)} for name, st in side.stats.items()
            }
        return out

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def checkpoint(self) -> None:
        self._delivered()
        self.worker.checkpoint()


async def _run_venue(actor: FeedActor) -> dict[str, Any]:
    """``FeedActor.run`` on a venue: its bar closes (connected here, not in the constructor: a
    venue down at start fails this call, not the actor), each sent off the loop (the sink
    blocks). A function, not a method: one ``async def`` would make Ray run the actor as an
    asyncio actor, whose blocking ``run()`` would hold ``stats()`` and ``stop()`` back."""
    from app.clock import WallClock
    from app.config import load_settings
    from app.live.venue_feeds import venue_source

    config = actor.config
    source = venue_source(
        config.settings or load_settings(), actor.window, actor.worker.symbols,
        actor.worker.store, WallClock(), feed_url=config.feed_url,
    )  # fmt: skip
    actor.worker.side = source.side  # its pollers run before each new bar
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    actor._wake = lambda: loop.call_soon_threadsafe(stop.set)
    if actor._stop:
        stop.set()

    def timed_out() -> None:
        actor.stopped = "duration"
        stop.set()

    def ready() -> None:  # the warm-up is done: --duration counts from here
        actor.ready = True
        if config.duration_s is not None:
            loop.call_later(config.duration_s, timed_out)

    closes = source.closes(actor.worker, stop, on_error=actor.errors.append, on_ready=ready)
    try:
        async with contextlib.aclosing(closes) as stream:
            async for close in stream:
                await asyncio.to_thread(actor._send, [close])
    finally:
        actor._wake = None
        for close_source in source.closers:
            with contextlib.suppress(Exception):
                close_source()
    actor._delivered()
    actor.worker.close()
    return actor.stats()


def _wait(sent: Any) -> Any:
    """The answer of a sink call: a Serve ``DeploymentResponse`` or a Ray ``ObjectRef``."""
    if hasattr(sent, "result"):
        return sent.result()
    import ray

    return ray.get(sent)


def _restarts_so_far() -> int:
    import ray

    if not ray.is_initialized():  # a plain-Python test (asking the context would start Ray)
        return 0
    try:
        return int(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:  # noqa: BLE001 - outside an actor (a plain-Python test)
        return 0


class BarCloseLog:
    """A sink that keeps every ``BarClose`` it receives (tests; the last per class for
    ``/v1/feeds``)."""

    def __init__(self) -> None:
        self.closes: list[BarClose] = []

    def on_close(self, close: BarClose) -> None:
        self.closes.append(close)

    def all(self) -> list[BarClose]:
        return list(self.closes)

    def count(self) -> int:
        return len(self.closes)
