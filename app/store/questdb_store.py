"""The production store: QuestDB, written over ILP/HTTP and read over HTTP ``/exec``.

Writes. A batch is checked like on DuckDB, then the keys already stored in its time span are
read back and dropped (first write wins, so ``write`` returns the number of new rows and a
re-sent batch returns 0); ``upsert=True`` skips that step and QuestDB's ``DEDUP UPSERT KEYS``
replaces the stored rows. Rows go out in requests of at most ``auto_flush_rows`` rows; each
request is one ILP/HTTP transaction, built in our own ``Buffer`` and flushed explicitly,
because the client clears its internal buffer when an automatic flush fails. The client
retries a failed request with bounded backoff for up to ``retry_timeout`` ms; after that the
write raises StoreUnavailable whose ``pending_rows`` are the rows of that request and all
later ones. Re-sending them is safe: the tables deduplicate on their key.

After the last request the store waits (up to ``visible_timeout`` s) until QuestDB's WAL
apply job has caught up, so a read right after a write sees it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pandas as pd
from questdb import QuestDBError, QuestDBErrorCode, Sender

from app.errors import InputError
from app.schema.tables import KEYS, TABLES
from app.store.asof import asof_align
from app.store.errors import StoreError, StoreUnavailable
from app.store.questdb_http import ExecClient
from app.store.questdb_sql import (
    create_table_sql,
    existing_keys_sql,
    ilp_buffer,
    last_ts_sql,
    latest_bars_sql,
    select_sql,
    series_sql,
    symbols_sql,
    wal_status_sql,
)
from app.store.schema import (
    column_type,
    has_symbol_column,
    prepare_batch,
    require_column,
    require_table,
)
from app.store.symbols import record_asset_classes, stored_asset_classes
from app.types import AssetClass, require_utc

log = logging.getLogger(__name__)

DEFAULT_HTTP_PORT = 9000
_UNREACHABLE = {
    QuestDBErrorCode.SocketError,
    QuestDBErrorCode.CouldNotResolveAddr,
    QuestDBErrorCode.ConnectTimeout,
}
# URL query options -> how to parse them; defaults live in QuestDBStore.__init__ only.
_URL_OPTIONS = {
    "pg_port": int,
    "auto_flush_rows": int,
    "retry_timeout": int,
    "request_timeout": int,
    "visible_timeout": float,
}


class QuestDBStore:
    """TimeSeriesStore on a QuestDB server.

    ``auto_flush_rows``: rows per ILP/HTTP request (one transaction each); ``retry_timeout``
    and ``request_timeout`` in ms (the ILP client's settings; the latter also bounds /exec);
    ``visible_timeout`` in s, the wait for the WAL apply job after a write; ``pg_port`` is the
    PostgreSQL wire port, recorded for psql/Grafana users (this store reads over HTTP).
    One instance is not thread-safe, and one writer per table keeps the counts exact.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_HTTP_PORT,
        *,
        tls: bool = False,
        pg_port: int = 8812,
        auto_flush_rows: int = 10_000,
        retry_timeout: int = 10_000,
        request_timeout: int = 30_000,
        visible_timeout: float = 30.0,
        url: str | None = None,
    ) -> None:
        if auto_flush_rows < 1:
            raise InputError(f"auto_flush_rows={auto_flush_rows}: must be >= 1")
        scheme = "https" if tls else "http"
        self.address = f"{scheme}://{host}:{port}"
        self.url = url or self.address
        self.pg_port = pg_port
        self.auto_flush_rows = auto_flush_rows
        self.visible_timeout = visible_timeout
        self.rejected: Counter[str] = Counter()
        self.requests_sent = 0
        self._ensured: set[str] = set()
        self._exec = ExecClient(self.address, timeout_s=request_timeout / 1000)
        conf = (
            f"{scheme}::addr={host}:{port};protocol_version=1;auto_flush=off;"
            f"retry_timeout={retry_timeout};request_timeout={request_timeout};"
        )
        self._sender = Sender.from_conf(conf)
        self._sender.establish()

    @classmethod
    def from_url(cls, url: str) -> QuestDBStore:
        """``questdb://host:9000?pg_port=8812&auto_flush_rows=10000`` (or http://, https://)."""
        parts = urlsplit(url)
        if not parts.hostname:
            raise InputError(f"store url={url!r}: no host (expected questdb://host:9000)")
        options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(options) - set(_URL_OPTIONS))
        if unknown:
            raise InputError(
                f"store url={url!r}: unknown options {unknown} (known: {sorted(_URL_OPTIONS)})"
            )
        values: dict[str, float] = {}
        for name, raw in options.items():
            try:
                values[name] = _URL_OPTIONS[name](raw)
            except ValueError:
                raise InputError(f"store url={url!r}: {name}={raw!r} is not a number") from None
        return cls(
            parts.hostname,
            parts.port or DEFAULT_HTTP_PORT,
            tls=parts.scheme == "https",
            url=url,
            **values,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ schema

    def create_schema(self) -> None:
        for table in TABLES:
            self._ensure(table)

    def _ensure(self, table: str) -> None:
        require_table(table)
        if table not in self._ensured:
            self._exec.execute(create_table_sql(table))
            self._ensured.add(table)

    # ------------------------------------------------------------------ writes

    def write(self, table: str, frame: pd.DataFrame, *, upsert: bool = False) -> int:
        """Send the rows whose key is new (all rows with ``upsert=True``); return how many."""
        batch = prepare_batch(table, frame, keep="last" if upsert else "first")
        if batch.rejected_null_key:
            self.rejected[table] += batch.rejected_null_key
            log.warning("%s: rejected %d rows with an empty key", table, batch.rejected_null_key)
        rows = batch.frame
        if rows.empty:
            return 0
        try:
            self._ensure(table)
            if not upsert:
                rows = self._new_rows(table, rows)
        except StoreUnavailable as exc:
            raise StoreUnavailable(
                self.address, f"before sending: {exc.detail}", table=table, pending_rows=rows
            ) from exc
        except StoreError as exc:
            raise StoreError(str(exc), table=table, pending_rows=rows) from exc
        if rows.empty:
            return 0
        for lo in range(0, len(rows), self.auto_flush_rows):
            chunk = rows.iloc[lo : lo + self.auto_flush_rows]
            try:
                self._sender.flush(ilp_buffer(table, chunk), transactional=True)
            except QuestDBError as exc:
                pending = rows.iloc[lo:].reset_index(drop=True)
                detail = f"ILP/HTTP write to {table} failed ({exc.code.name}: {exc})"
                if exc.code in _UNREACHABLE:
                    raise StoreUnavailable(
                        self.address, detail, table=table, pending_rows=pending
                    ) from exc
                raise StoreError(
                    f"{self.address}: {detail}", table=table, pending_rows=pending
                ) from exc
            self.requests_sent += 1
        self._await_applied(table)
        return len(rows)

    def write_bars(self, frame: pd.DataFrame, *, upsert: bool = False) -> int:
        return self.write("bars", frame, upsert=upsert)

    def _new_rows(self, table: str, rows: pd.DataFrame) -> pd.DataFrame:
        key = list(KEYS[table])
        stored = self._exec.query(existing_keys_sql(table, rows))
        if stored.empty:
            return rows
        marked = rows.merge(stored[key].drop_duplicates(), on=key, how="left", indicator=True)
        return rows.loc[(marked["_merge"] == "left_only").to_numpy()].reset_index(drop=True)

    def _await_applied(self, table: str) -> None:
        """Poll ``wal_tables()`` until the committed transactions are applied (visible)."""
        deadline = time.monotonic() + self.visible_timeout
        delay = 0.01
        while True:
            status = self._exec.query(wal_status_sql(table))
            if status.empty:
                return  # not a WAL table: rows are visible once acknowledged
            row = status.iloc[0]
            if bool(row["suspended"]):
                raise StoreError(
                    f"{self.address}: table {table} is suspended (WAL apply failed); rows are "
                    "committed but invisible until ALTER TABLE ... RESUME WAL"
                )
            if int(row["writerTxn"]) >= int(row["sequencerTxn"]):
                return
            if time.monotonic() >= deadline:
                log.warning(
                    "%s: %s rows acknowledged but not applied after %.1f s",
                    self.address,
                    table,
                    self.visible_timeout,
                )
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    # ------------------------------------------------------------------ reads

    def read(
        self,
        table: str,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        self._ensure(table)
        for name, bound in (("start", start), ("end", end)):
            if bound is not None:
                require_utc("read", name, bound)
        frame = self._typed(table, self._exec.query(select_sql(table, symbol, start, end)))
        if symbol is not None and not has_symbol_column(table):
            listed = frame["symbols"].fillna("").str.split("|").map(lambda s: symbol in s)
            frame = frame.loc[listed.astype(bool)].reset_index(drop=True)
        return frame

    def read_bars(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        return self.read("bars", symbol, start, end)

    def latest_bars(self, symbol: str, n: int) -> pd.DataFrame:
        if n < 0:
            raise InputError(f"n={n}: the number of bars must be >= 0")
        self._ensure("bars")
        if n == 0:
            return self._typed("bars", pd.DataFrame(columns=list(TABLES["bars"])))
        return self._typed("bars", self._exec.query(latest_bars_sql(symbol, n)))

    def last_ts(self, table: str, symbol: str) -> datetime | None:
        self._ensure(table)
        if not has_symbol_column(table):
            frame = self.read(table, symbol)
            return None if frame.empty else frame["ts"].max().to_pydatetime()
        out = self._exec.query(last_ts_sql(table, symbol))
        if out.empty or pd.isna(out["ts"].iloc[0]):
            return None
        return out["ts"].iloc[0].to_pydatetime()

    def symbols(self, table: str = "bars") -> list[str]:
        self._ensure(table)
        frame = self._exec.query(symbols_sql(table))
        if has_symbol_column(table):
            return [s for s in frame["symbol"].tolist() if s]
        listed = {s for joined in frame["symbols"].dropna() for s in joined.split("|") if s}
        return sorted(listed)

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
        """Client-side as-of join (QuestDB's ASOF JOIN keys on designated timestamps only)."""
        if not has_symbol_column(table):
            raise InputError(f"table={table!r}: as-of join needs a table with a symbol column")
        require_column(table, value_column)
        require_column(table, time_column, kind="ts")
        if kind is not None:
            require_column(table, "kind")
        self._ensure("bars")
        self._ensure(table)
        bars = self._exec.query(series_sql("bars", bars_symbol, ["ts"], None))
        series = self._exec.query(
            series_sql(table, series_symbol, ["ts", time_column, value_column], kind)
        )
        bar_ts = bars["ts"] if not bars.empty else pd.Series([], dtype="datetime64[ns, UTC]")
        series = self._typed(table, series) if not series.empty else series
        return asof_align(bar_ts, series, value_column, time_column)

    def close(self) -> None:
        try:
            self._sender.close(flush=False)
        finally:
            self._exec.close()

    def __enter__(self) -> QuestDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _typed(table: str, frame: pd.DataFrame) -> pd.DataFrame:
        """Give an /exec frame the same dtypes the DuckDB store returns (also when empty)."""
        for column in frame.columns:
            kind = column_type(column)
            if kind == "ts":
                frame[column] = pd.to_datetime(frame[column], utc=True).astype(
                    "datetime64[ns, UTC]"
                )
            elif kind == "f64":
                frame[column] = pd.to_numeric(frame[column]).astype("float64")
            elif kind == "bool" and column in TABLES[table]:
                frame[column] = frame[column].astype(bool)
        return frame
