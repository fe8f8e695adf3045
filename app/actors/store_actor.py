"""``StoreActor``: the single writer that owns a DuckDB file and serves reads and writes.

DuckDB allows one writing process, so with Ray one actor opens the file and every feed writes
through it (``RemoteStore`` gives a feed the ``BarStore`` and ``FlowStore`` calls over the actor
handle: bars, and the flow pollers' items and cursors; and the ``--retrain-every`` hook the reads
a walk-forward makes). With QuestDB there is no such owner: each feed actor opens its own store
and writes over ILP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from app.store import open_store
from app.types import AssetClass

STORE_ACTOR_OPTIONS: dict[str, Any] = {"max_restarts": -1, "max_task_retries": -1}


class StoreActor:
    """Owns ``open_store(url)``; its methods are the ``TimeSeriesStore`` calls feeds make."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.store = open_store(url)

    def write(self, table: str, frame: pd.DataFrame, upsert: bool = False) -> int:
        return int(self.store.write(table, frame, upsert=upsert))

    def write_bars(self, frame: pd.DataFrame, upsert: bool = False) -> int:
        return int(self.store.write_bars(frame, upsert=upsert))

    def read(
        self,
        table: str,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        return self.store.read(table, symbol, start, end)

    def read_bars(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        return self.store.read_bars(symbol, start, end)

    def store_url(self) -> str:
        return self.url

    def last_ts(self, table: str, symbol: str) -> datetime | None:
        return self.store.last_ts(table, symbol)

    def count(self, table: str = "bars") -> int:
        return len(self.store.read(table))

    def close(self) -> None:
        self.store.close()


class RemoteStore:
    """The ``BarStore`` calls of a ``FeedWorker``, the ``FlowStore`` calls of its side feed (the
    flow pollers' items and cursors) and the reads of ``load_store`` (bars, side tables, the
    recorded asset classes) over a ``StoreActor`` handle (blocking: the bar or item is stored
    before the feed moves on)."""

    def __init__(self, handle: Any, url: str = "") -> None:
        self.handle = handle
        self.url = url  # the actor's store, for messages and a data set's source

    def write(self, table: str, frame: pd.DataFrame, *, upsert: bool = False) -> int:
        import ray

        return int(ray.get(self.handle.write.remote(table, frame, upsert)))

    def read(
        self,
        table: str,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        import ray

        return ray.get(self.handle.read.remote(table, symbol, start, end))

    def write_bars(self, frame: pd.DataFrame, *, upsert: bool = False) -> int:
        import ray

        return int(ray.get(self.handle.write_bars.remote(frame, upsert)))

    def read_bars(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        import ray

        return ray.get(self.handle.read_bars.remote(symbol, start, end))

    def asset_classes(self) -> dict[str, AssetClass]:
        from app.store.symbols import stored_asset_classes

        return stored_asset_classes(self)  # type: ignore[arg-type]  # read() is all it needs

    def close(self) -> None:  # the actor owns the file
        return None
