"""The storage contract every backend honours (DuckDB embedded, QuestDB production).

Frames crossing this boundary are pandas DataFrames whose ``ts``-like columns are
``datetime64[ns, UTC]``. Writes are idempotent on the table's key (``(symbol, ts)`` for bars):
writing a row whose key already exists adds nothing and returns 0 for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

import pandas as pd

from app.schema.tables import KEYS, TABLES  # noqa: F401 - re-exported for the backends
from app.types import AssetClass


@runtime_checkable
class TimeSeriesStore(Protocol):
    """What the rest of the system may ask of a store."""

    url: str

    def create_schema(self) -> None:
        """Create every table in TABLES if missing (idempotent)."""

    def write(self, table: str, frame: pd.DataFrame, *, upsert: bool = False) -> int:
        """Insert the rows whose key is new; return how many were inserted.

        A row whose key is already stored is ignored (first write wins). With
        ``upsert=True`` every row is written and replaces the stored row of its key (a
        corrected bar); the return value is then the number of rows written.
        """

    def write_bars(self, frame: pd.DataFrame, *, upsert: bool = False) -> int:
        """``write("bars", frame)``; the frame has the columns of TABLES["bars"]."""

    def read(
        self,
        table: str,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Rows with ``start <= ts < end`` (either bound optional), sorted by (symbol, ts)."""

    def read_bars(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """Bars of one symbol in ``[start, end)``, sorted by ts."""

    def latest_bars(self, symbol: str, n: int) -> pd.DataFrame:
        """The last ``n`` bars of a symbol, oldest first."""

    def last_ts(self, table: str, symbol: str) -> datetime | None:
        """Newest ``ts`` stored for ``symbol`` (for resuming a backfill), or None."""

    def symbols(self, table: str = "bars") -> list[str]:
        """Distinct symbols present in a table."""

    def asset_classes(self) -> dict[str, AssetClass]:
        """Symbol -> asset class, as recorded by ingest (the ``symbols`` table)."""

    def record_asset_classes(self, classes: Mapping[str, AssetClass]) -> int:
        """Remember each symbol's asset class; return how many symbols were new.

        A symbol already recorded with another class is an InputError naming both, and
        then nothing is written.
        """

    def asof_join(
        self,
        bars_symbol: str,
        table: str,
        series_symbol: str,
        value_column: str = "value",
        time_column: str = "published_at",
        *,
        kind: str | None = None,
    ) -> pd.DataFrame:
        """Align a slower series onto the bar grid of ``bars_symbol``.

        For each bar, the latest row of ``table``/``series_symbol`` whose ``time_column`` is
        at or before the bar's close (``ts + 5 min``); NaN where none exists yet. Returns
        columns ``ts`` and ``value_column``. ``kind`` narrows the flow table to one kind.
        """

    def close(self) -> None:
        """Flush pending writes and release the connection."""
