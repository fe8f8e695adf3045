"""What the QuestDB store says on the wire: DDL, SELECTs and ILP buffers. Pure functions.

Values are inlined as literals because ``/exec`` takes no bind parameters: text is quoted
with doubled single quotes. Identifiers only ever come from ``TABLES`` and are always
double-quoted, so a column name that is also a QuestDB keyword (``type``, ``open`` ...) is
safe (questdb-connect quotes ``TIMESTAMP("ts")`` and ``UPSERT KEYS(...)`` the same way).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pandas as pd
from questdb._client import Buffer  # the public ``questdb`` namespace does not re-export it

from app.schema.tables import KEYS, TABLES
from app.store.schema import LogicalType, column_type, has_symbol_column, require_table
from app.types import require_utc

QUESTDB_TYPES: dict[LogicalType, str] = {
    "str": "VARCHAR",  # VARCHAR (not STRING) can be a DEDUP key
    "sym": "SYMBOL",
    "ts": "TIMESTAMP",
    "f64": "DOUBLE",
    "bool": "BOOLEAN",
}


def ident(name: str) -> str:
    """A double-quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def idents(names: Iterable[str]) -> str:
    return ", ".join(ident(n) for n in names)


def create_table_sql(table: str) -> str:
    """WAL table with designated timestamp ``ts``, daily partitions and upsert keys."""
    columns = ", ".join(f"{ident(c)} {QUESTDB_TYPES[column_type(c)]}" for c in require_table(table))
    keys = idents(["ts", *(k for k in KEYS[table] if k != "ts")])
    return (
        f"CREATE TABLE IF NOT EXISTS {ident(table)} ({columns}) "
        f'TIMESTAMP("ts") PARTITION BY DAY WAL DEDUP UPSERT KEYS({keys})'
    )


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def ts_literal(ts: datetime | pd.Timestamp) -> str:
    """An ISO-8601 UTC literal with microseconds, the precision of a QuestDB TIMESTAMP."""
    if isinstance(ts, pd.Timestamp):
        ts = ts.to_pydatetime()
    require_utc("query", "ts", ts)
    return quote(ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def where_clause(
    table: str,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> str:
    """Half-open time range ``[start, end)`` and, where the table has one, the symbol."""
    clauses: list[str] = []
    if symbol is not None and has_symbol_column(table):
        clauses.append(f'"symbol" = {quote(symbol)}')
    if start is not None:
        clauses.append(f'"ts" >= {ts_literal(start)}')
    if end is not None:
        clauses.append(f'"ts" < {ts_literal(end)}')
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def select_sql(
    table: str,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> str:
    order = idents(["symbol", "ts"] if has_symbol_column(table) else ["ts", "id"])
    columns = idents(require_table(table))
    where = where_clause(table, symbol, start, end)
    return f"SELECT {columns} FROM {ident(table)}{where} ORDER BY {order}"


def latest_bars_sql(symbol: str, n: int) -> str:
    columns = idents(TABLES["bars"])
    return (
        f'SELECT {columns} FROM (SELECT {columns} FROM "bars" WHERE "symbol" = {quote(symbol)} '
        f'ORDER BY "ts" DESC LIMIT {int(n)}) ORDER BY "ts"'
    )


def last_ts_sql(table: str, symbol: str) -> str:
    return f'SELECT max("ts") AS "ts" FROM {ident(table)}{where_clause(table, symbol)}'


def symbols_sql(table: str) -> str:
    column = ident("symbol" if has_symbol_column(table) else "symbols")
    return f"SELECT DISTINCT {column} FROM {ident(table)} ORDER BY {column}"


def existing_keys_sql(table: str, frame: pd.DataFrame) -> str:
    """Keys already stored in the time span of a batch (and its symbols, where it has them)."""
    key = KEYS[table]
    clauses = [
        f'"ts" >= {ts_literal(frame["ts"].min())}',
        f'"ts" <= {ts_literal(frame["ts"].max())}',
    ]
    if "symbol" in key:
        listed = ", ".join(quote(s) for s in sorted(frame["symbol"].unique()))
        clauses.append(f'"symbol" IN ({listed})')
    return f"SELECT {idents(key)} FROM {ident(table)} WHERE {' AND '.join(clauses)}"


def series_sql(table: str, symbol: str, columns: Iterable[str], kind: str | None) -> str:
    """The rows of one series (for the client-side as-of join)."""
    where = f' WHERE "symbol" = {quote(symbol)}'
    if kind is not None:
        where += f' AND "kind" = {quote(kind)}'
    return f'SELECT {idents(dict.fromkeys(columns))} FROM {ident(table)}{where} ORDER BY "ts"'


def wal_status_sql(table: str) -> str:
    """How far the WAL apply job is behind: committed rows are visible once equal."""
    return (
        "SELECT name, suspended, writerTxn, sequencerTxn FROM wal_tables() "
        f"WHERE name = {quote(table)}"
    )


def ilp_buffer(table: str, frame: pd.DataFrame, protocol_version: int = 1) -> Buffer:
    """ILP lines for a prepared batch: SYMBOL columns as tags, ``ts`` as designated timestamp.

    None text becomes an absent field and NaN is sent as NaN: QuestDB stores both as NULL.
    Protocol 1 is text ILP (floats printed); 2 sends floats in binary.
    """
    symbols = [c for c in frame.columns if column_type(c) == "sym"]
    buffer = Buffer(protocol_version=protocol_version)
    buffer.dataframe(frame, table_name=table, symbols=symbols, at="ts")
    return buffer
