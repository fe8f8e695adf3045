"""The embedded store: one DuckDB file (or memory) owned by one writer process.

Timestamps are ``TIMESTAMPTZ`` (microseconds, session time zone pinned to UTC) and come back
as ``datetime64[ns, UTC]``. Writes go through Arrow: the batch is registered as a view and
inserted with an anti-join on the table key, which measured 2-3x faster here than a
PRIMARY KEY with ``ON CONFLICT DO NOTHING`` (docs/STORE.md).

Corrections: by default the first write of a key wins (a re-sent bar adds nothing);
``write(..., upsert=True)`` replaces the stored rows of the batch's keys instead.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from app.errors import InputError
from app.schema.tables import KEYS, TABLES
from app.store.errors import StoreError, StoreUnavailable
from app.store.rows import prepare_rows
from app.store.schema import (
    LogicalType,
    column_type,
    has_symbol_column,
    prepare_batch,
    require_column,
    require_table,
)
from app.store.symbols import record_asset_classes, stored_asset_classes
from app.types import BAR_INTERVAL, AssetClass, require_utc

log = logging.getLogger(__name__)

_DUCKDB_TYPES: dict[LogicalType, str] = {
    "str": "VARCHAR",
    "sym": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "f64": "DOUBLE",
    "bool": "BOOLEAN",
}
_BATCH_VIEW = "_store_batch"
_ROWS_PER_STATEMENT = 256  # write_rows: more rows go through the Arrow path


def create_table_sql(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one table (no index: the key is enforced on write)."""
    cols = ", ".join(f"{c} {_DUCKDB_TYPES[column_type(c)]}" for c in require_table(table))
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


class DuckDBStore:
    """TimeSeriesStore on DuckDB. Not for several processes: DuckDB locks the file."""

    def __init__(self, path: str | Path = ":memory:", *, url: str | None = None) -> None:
        self.path = str(path)
        self.url = url or f"duckdb:///{self.path}"
        # Rows dropped on write because a key column was empty, per table.
        self.rejected: Counter[str] = Counter()
        self._lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(self.path)
        except duckdb.IOException as exc:
            raise StoreUnavailable(self.path, f"cannot open the DuckDB file ({exc})") from exc
        self._run("SET TimeZone = 'UTC'")
        self.create_schema()

    # ------------------------------------------------------------------ schema

    def create_schema(self) -> None:
        for table in TABLES:
            self._run(create_table_sql(table))

    # ------------------------------------------------------------------ writes

    def write(self, table: str, frame: pd.DataFrame, *, upsert: bool = False) -> int:
        """Insert rows whose key is new; return how many were inserted.

        With ``upsert=True`` every row of the batch is written, replacing a stored row with the
        same key (a corrected bar), and the number of rows written is returned. Inside one
        batch the first row of a repeated key wins, or the last one when upserting.
        """
        batch = prepare_batch(table, frame, keep="last" if upsert else "first")
        if batch.rejected_null_key:
            self.rejected[table] += batch.rejected_null_key
            log.warning("%s: rejected %d rows with an empty key", table, batch.rejected_null_key)
        if batch.frame.empty:
            return 0
        arrow = pa.Table.from_pandas(batch.frame, preserve_index=False)
        key = KEYS[table]
        on = " AND ".join(f"t.{k} = b.{k}" for k in key)
        cols = ", ".join(TABLES[table])
        with self._lock:
            self._con.register(_BATCH_VIEW, arrow)
            try:
                if upsert:
                    self._con.execute("BEGIN TRANSACTION").fetchall()
                    self._con.execute(
                        f"DELETE FROM {table} t USING {_BATCH_VIEW} b WHERE {on}"
                    ).fetchall()
                    [(count,)] = self._con.execute(
                        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {_BATCH_VIEW}"
                    ).fetchall()
                    self._con.execute("COMMIT").fetchall()
                else:
                    # Only stored rows inside the batch's time span can collide: the range
                    # filter lets DuckDB skip row groups by their min/max.
                    [(count,)] = self._con.execute(
                        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {_BATCH_VIEW} b "
                        f"ANTI JOIN (SELECT {', '.join(key)} FROM {table} "
                        "WHERE ts >= ? AND ts <= ?) t "
                        f"ON {on}",
                        [batch.frame["ts"].min(), batch.frame["ts"].max()],
                    ).fetchall()
            except duckdb.Error as exc:
                if upsert:
                    self._con.execute("ROLLBACK").fetchall()
                raise StoreError(
                    f"{self.url}: write to {table} failed: {exc}",
                    table=table,
                    pending_rows=batch.frame,
                ) from exc
            finally:
                self._con.unregister(_BATCH_VIEW)
        return int(count)

    def write_rows(
        self, table: str, rows: Sequence[Mapping[str, object]], *, upsert: bool = False
    ) -> int:
        """``write`` for a few rows given as mappings (the execution journal's path).

        Same checks, keys and first/last-wins rules as ``write``, without a DataFrame and an
        Arrow table per call: parameterized statements in one transaction (a one-row write
        measured ~4 ms against ~33 ms through ``write``; bench/bar_close.py). Over
        256 rows (a restart's backlog) it hands over to ``write``.."""
        batch = prepare_rows(table, rows, keep="last" if upsert else "first")
        if batch.rejected_null_key:
            self.rejected[table] += batch.rejected_null_key
            log.warning("%s: rejected %d rows with an empty key", table, batch.rejected_null_key)
        if not batch.values:
            return 0
        if len(batch.values) > _ROWS_PER_STATEMENT:  # a restart's backlog: the bulk path
            frame = batch.frame().astype({"ts": "datetime64[ns, UTC]"})
            return self.write(table, frame, upsert=upsert)
        key = KEYS[table]
        keys = batch.keys(table)
        # one statement each, the rows' values as parameters (executemany costs a statement
        # per row): "k1 = ? AND k2 = ?" once per row, OR-ed
        match = " OR ".join(["(" + " AND ".join(f"{k} = ?" for k in key) + ")"] * len(keys))
        flat_keys = [v for k in keys for v in k]
        with self._lock:
            try:
                self._con.execute("BEGIN TRANSACTION")
                if upsert:
                    self._con.execute(f"DELETE FROM {table} WHERE {match}", flat_keys)
                    values = list(batch.values)
                else:  # first write wins: only keys not stored yet
                    found = self._con.execute(
                        f"SELECT {', '.join(key)} FROM {table} WHERE {match}", flat_keys
                    ).fetchall()
                    stored = set(found)  # aware datetimes compare and hash by instant
                    values = [v for k, v in zip(keys, batch.values, strict=True) if k not in stored]
                if values:
                    row = "(" + ", ".join("?" * len(batch.columns)) + ")"
                    self._con.execute(
                        f"INSERT INTO {table} ({', '.join(batch.columns)}) VALUES "
                        + ", ".join([row] * len(values)),
                        [v for r in values for v in r],
                    )
                self._con.execute("COMMIT")
            except duckdb.Error as exc:
                with contextlib.suppress(duckdb.Error):  # no transaction if BEGIN failed
                    self._con.execute("ROLLBACK")
                raise StoreError(
                    f"{self.url}: write to {table} failed: {exc}",
                    table=table,
                    pending_rows=batch.frame(),
                ) from exc
        return len(values)

    def write_bars(self, frame: pd.DataFrame, *, upsert: bool = False) -> int:
        return self.write("bars", frame, upsert=upsert)

    # ------------------------------------------------------------------ reads

    def read(
        self,
        table: str,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Rows with ``start <= ts < end``; for news, ``symbol`` matches its symbols list."""
        require_table(table)
        where, params = self._filters(table, symbol, start, end)
        order = "symbol, ts" if has_symbol_column(table) else "ts, id"
        sql = f"SELECT {', '.join(TABLES[table])} FROM {table}{where} ORDER BY {order}"
        return self._frame(sql, params, table)

    def read_bars(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        return self.read("bars", symbol, start, end)

    def latest_bars(self, symbol: str, n: int) -> pd.DataFrame:
        if n < 0:
            raise InputError(f"n={n}: the number of bars must be >= 0")
        cols = ", ".join(TABLES["bars"])
        sql = (
            f"SELECT * FROM (SELECT {cols} FROM bars WHERE symbol = ? ORDER BY ts DESC LIMIT ?) "
            "ORDER BY ts"
        )
        return self._frame(sql, [symbol, n], "bars")

    def last_ts(self, table: str, symbol: str) -> datetime | None:
        where, params = self._filters(table, symbol, None, None)
        (value,) = self._fetchone(f"SELECT max(ts) FROM {table}{where}", params)
        return None if value is None else pd.Timestamp(value).tz_convert("UTC").to_pydatetime()

    def symbols(self, table: str = "bars") -> list[str]:
        if has_symbol_column(table):
            sql = f"SELECT DISTINCT symbol FROM {table} ORDER BY symbol"
        else:
            sql = (
                f"SELECT DISTINCT s FROM (SELECT unnest(string_split(symbols, '|')) AS s "
                f"FROM {table}) WHERE s <> '' ORDER BY s"
            )
        with self._lock:
            return [row[0] for row in self._con.execute(sql).fetchall()]

    def asset_classes(self) -> dict[str, AssetClass]:
        return stored_asset_classes(self)

    def record_asset_classes(self, classes: Mapping[str, AssetClass]) -> int:
        return record_asset_classes(self, classes)

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
        """For each bar, the newest value published at or before the bar's close.

        ``kind`` narrows a flow table to one kind. Among rows published at the same instant
        the one with the latest ``ts`` wins.
        """
        if not has_symbol_column(table):
            raise InputError(f"table={table!r}: as-of join needs a table with a symbol column")
        require_column(table, value_column)
        require_column(table, time_column, kind="ts")
        params: list[object] = [BAR_INTERVAL, bars_symbol, series_symbol]
        kind_filter = ""
        if kind is not None:
            require_column(table, "kind")
            kind_filter = " AND kind = ?"
            params.append(kind)
        tie_break = ", ".join(f"{k} DESC" for k in KEYS[table] if k != "symbol")
        sql = f"""
            WITH b AS (SELECT ts, ts + ?::INTERVAL AS known_at FROM bars WHERE symbol = ?),
            s AS (
                SELECT {time_column} AS available_at, {value_column} AS v FROM {table}
                WHERE symbol = ?{kind_filter}
                QUALIFY row_number() OVER (PARTITION BY {time_column} ORDER BY {tie_break}) = 1
            )
            SELECT b.ts, s.v AS {value_column}
            FROM b ASOF LEFT JOIN s ON b.known_at >= s.available_at
            ORDER BY b.ts
        """
        out = self._frame(sql, params, None)
        if column_type(value_column) == "f64":
            out[value_column] = out[value_column].astype("float64")
        return out

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _filters(
        self, table: str, symbol: str | None, start: datetime | None, end: datetime | None
    ) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        if symbol is not None:
            if has_symbol_column(table):
                clauses.append("symbol = ?")
            else:
                clauses.append("list_contains(string_split(symbols, '|'), ?)")
            params.append(symbol)
        if start is not None:
            clauses.append("ts >= ?")
            params.append(require_utc("read", "start", start))
        if end is not None:
            clauses.append("ts < ?")
            params.append(require_utc("read", "end", end))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def _frame(self, sql: str, params: list[object], table: str | None) -> pd.DataFrame:
        with self._lock:
            arrow = self._con.sql(sql, params=params).to_arrow_table()
        frame = arrow.to_pandas()
        for column in frame.columns:
            if column_type(column) == "ts":
                frame[column] = frame[column].astype("datetime64[ns, UTC]")
        if table is not None and frame.empty:
            # Keep the declared dtypes on empty results, so callers can concat safely.
            for column in frame.columns:
                if column_type(column) == "f64":
                    frame[column] = frame[column].astype("float64")
        return frame

    def _fetchone(self, sql: str, params: list[object]) -> tuple:
        with self._lock:
            rows = self._con.execute(sql, params).fetchall()
        return rows[0] if rows else (None,)

    def _run(self, sql: str) -> None:
        with self._lock:
            self._con.execute(sql).fetchall()
