"""``StoreActor``: the single writer that owns a DuckDB file and serves reads and writes.

DuckDB allows one writing process, so with Ray one actor opens the file and every feed writes
through it (``RemoteStore`` gives a feed the ``BarStore`` and ``FlowStore`` calls over the actor
handle: bars, and the flow pollers' items and cursors). With
QuestDB there is no such owner: each feed actor opens its own store and writes over ILP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from app.store import open_store

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

    def last_ts(self, table: str, symbol: str) -> datetime | None:
        return self.store.last_ts(table, symbol)

    def count(self, table: str = "bars") -> int:
        return len(self.store.read(table))

    def close(self) -> None:
        self.store.close()


class RemoteStore:
    """The ``BarStore`` calls of a ``FeedWorker`` and the ``FlowStore`` calls of its side feed
    (the flow pollers' items and cursors) over a ``StoreActor`` handle (blocking: the bar or
    item is stored before the feed moves on)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

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

    def close(self) -> None:  # the actor owns the file
        return None
