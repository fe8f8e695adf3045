"""``FeedActor``: one asset class's feed (a ``FeedWorker`` and its replay source) as a Ray actor.

Created with ``FEED_ACTOR_OPTIONS`` (``max_restarts=-1``, ``max_task_retries=-1``): when the
process dies (``ray.kill(..., no_restart=False)``, a lost node), Ray starts it again, the
constructor restores the worker from its checkpoint and the store, and the interrupted
``run()`` call is retried: it continues the source from ``resume_point()``. Bar closes go to a
sink actor (``on_close.remote(bar_close)``, in order); after a restart the closes rebuilt by
``restore()`` are sent again, marked ``replayed``. With ``FeedConfig.wait_sink`` each close
waits for the sink's answer (the Serve app's handle: one bar close in the graph at a time, and
``--speed max`` goes as fast as the graph answers); ``stop()`` ends a running ``run()``.
"""

from __future__ import annotations

import os
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
    replay: str  # CSV file / folder, simulator folder or store URL
    checkpoint_dir: str
    symbols: tuple[str, ...] | None = None
    store_url: str | None = None  # own store (QuestDB: each actor writes over ILP itself)
    checkpoint_every: int = 288
    store_every: int = 1
    speed: float | None = None  # bars per second per ticker; None = max
    score_news: bool = True  # load the configured sentiment model for headlines
    wait_sink: bool = False  # wait for each close's answer (a Serve handle's DeploymentResponse)
    registry_dir: str | None = None  # where the sentiment head is (default: the settings')


class FeedActor:
    """Lifecycle and messaging around ``FeedWorker``; no logic of its own."""

    def __init__(
        self, config: FeedConfig, window: WindowSpec, store: Any = None, sink: Any = None
    ) -> None:
        from app.actors.store_actor import RemoteStore

        self.config = config
        self.sink = sink
        self.data = load_replay(config.replay, config.asset_class, config.symbols)
        if store is not None:
            bar_store: Any = RemoteStore(store)
        elif config.store_url:
            from app.store import open_store

            bar_store = open_store(config.store_url)
        else:
            raise ValueError("FeedActor: pass a StoreActor handle or config.store_url")
        self.worker = FeedWorker(
            config.asset_class,
            self.data.symbols(config.asset_class),
            window,
            bar_store,
            scorer=self._scorer(window) if config.score_news and self.data.news else None,
            checkpoints=CheckpointDir(config.checkpoint_dir, config.asset_class),
            checkpoint_every=config.checkpoint_every,
            store_every=config.store_every,
        )
        self.starts = 1 + _restarts_so_far()
        self._stop = False
        self._send(self.worker.restore())

    def _scorer(self, window: WindowSpec) -> Any:
        from pathlib import Path

        from app.config import load_settings
        from app.live.headlines import HeadlineScorer
        from app.models.text_loader import cached_sentiment_model

        settings = load_settings()
        registry_dir = self.config.registry_dir or settings.registry_dir
        model = cached_sentiment_model(settings.sentiment, Path(registry_dir))
        return HeadlineScorer(model, self.data.assets, window.impact_model)

    def _send(self, closes: list[BarClose]) -> None:
        if self.sink is not None:
            for close in closes:
                sent = self.sink.on_close.remote(close)
                if self.config.wait_sink:
                    _wait(sent)

    def run(self, max_items: int | None = None) -> dict[str, Any]:
        """Stream the source from the worker's resume point to its end (or ``max_items``)."""
        replay = Replay(self.data, self.config.asset_class, speed=self.config.speed)
        for k, item in enumerate(replay.items(self.worker.resume_point())):
            if (max_items is not None and k >= max_items) or self._stop:
                break
            self._send(self.worker.on_item(item))
        self.worker.close()
        return self.stats()

    def stop(self) -> None:
        """End a running ``run()`` after its current item (it closes the worker and returns)."""
        self._stop = True

    def stats(self) -> dict[str, Any]:
        return {**asdict(self.worker.stats()), "starts": self.starts, "pid": os.getpid()}

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def checkpoint(self) -> None:
        self.worker.checkpoint()


def _wait(sent: Any) -> Any:
    """The answer of a sink call: a Serve ``DeploymentResponse`` or a Ray ``ObjectRef``."""
    if hasattr(sent, "result"):
        return sent.result()
    import ray

    return ray.get(sent)


def _restarts_so_far() -> int:
    import ray

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
