"""Column types of the store tables and the one check every write goes through.

Both backends share this, so a frame accepted by DuckDB is accepted by QuestDB and vice
versa. Logical types: ``str`` (text), ``sym`` (low-cardinality text: a QuestDB SYMBOL),
``ts`` (UTC timestamp), ``f64`` and ``bool``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from app.errors import InputError
from app.schema.tables import KEYS, TABLES

LogicalType = Literal["str", "sym", "ts", "f64", "bool"]

_SYMBOL_COLUMNS = {
    "symbol",
    "kind",
    "side",
    "type",
    "reason",
    "source",
    "model",
    "signal",
    "model_version",
    "risk_state",
    "topic",
    "status",
    "role",
}
_TEXT_COLUMNS = {
    "id",
    "title",
    "body",
    "symbols",
    "url",
    "news_id",
    "client_order_id",
    "venue_order_id",
    "parent",
    "message",
    "fill_id",
    "cursor",
    "asset_class",  # text, not a SYMBOL: an ILP line needs a field besides its tags
}
_TIME_COLUMNS = {"ts", "published_at"}
_BOOL_COLUMNS = {"reduce_only", "external"}


def column_type(column: str) -> LogicalType:
    """Logical type of a column name (names mean the same thing in every table)."""
    if column in _TIME_COLUMNS:
        return "ts"
    if column in _SYMBOL_COLUMNS:
        return "sym"
    if column in _TEXT_COLUMNS:
        return "str"
    if column in _BOOL_COLUMNS:
        return "bool"
    return "f64"


def require_table(table: str) -> tuple[str, ...]:
    """The table's columns, or InputError naming the unknown table."""
    try:
        return TABLES[table]
    except KeyError:
        known = sorted(TABLES)
        raise InputError(f"table={table!r}: unknown store table (known: {known})") from None


def require_column(table: str, column: str, *, kind: LogicalType | None = None) -> str:
    """``column`` if it belongs to ``table`` (and has logical type ``kind``), else InputError.

    Column names are interpolated into SQL, so only names from TABLES ever get through.
    """
    if column not in require_table(table):
        raise InputError(f"column={column!r}: not a column of table {table!r}")
    if kind is not None and column_type(column) != kind:
        raise InputError(f"column={column!r}: {table}.{column} is not of type {kind}")
    return column


def has_symbol_column(table: str) -> bool:
    """News rows carry a ``|``-joined ``symbols`` list instead of one ``symbol``."""
    return "symbol" in require_table(table)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A write batch in canonical form, plus what was thrown out and why."""

    frame: pd.DataFrame
    rejected_null_key: int
    duplicate_keys: int


def prepare_batch(
    table: str, frame: pd.DataFrame, *, keep: Literal["first", "last"]
) -> PreparedBatch:
    """Check and normalize a frame for ``table``.

    Structural problems (unknown table, missing column, naive or non-time timestamps, text in
    a number column) raise InputError naming the column: the whole frame is unusable. Row
    problems are counted, not raised: rows with a missing key value are dropped, and of rows
    that repeat a key inside the batch only the ``keep`` one survives.
    """
    columns = require_table(table)
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"frame={type(frame).__name__}: expected a pandas DataFrame for {table!r}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"table={table!r}: frame lacks columns {missing}")
    out = pd.DataFrame({c: _normalize_column(table, c, frame[c]) for c in columns})
    key = list(KEYS[table])
    null_key = out[key].isna().any(axis=1)
    rejected = int(null_key.sum())
    if rejected:
        out = out.loc[~null_key]
    duplicates = 0
    if may_repeat_keys(out, key):
        duplicate = out.duplicated(subset=key, keep=keep)
        duplicates = int(duplicate.sum())
        if duplicates:
            out = out.loc[~duplicate]
    return PreparedBatch(out.reset_index(drop=True), rejected, duplicates)


def may_repeat_keys(frame: pd.DataFrame, key: list[str]) -> bool:
    """False when the key is unique for sure; a cheap test that saves a full hash.

    Ingest batches are mostly grouped by series and sorted by time: then the key is unique
    if ``ts`` strictly increases inside each run of equal non-time key columns and no
    series occurs in two runs. Anything else answers True (check with a hash).
    """
    n = len(frame)
    if n < 2:
        return False
    groups = [c for c in key if c != "ts"]
    table = pa.Table.from_pandas(frame[[*groups, "ts"]], preserve_index=False)
    ts = table.column("ts")
    same = None
    for column in groups:
        values = table.column(column)
        equal = pc.equal(values.slice(1), values.slice(0, n - 1))
        same = equal if same is None else pc.and_(same, equal)
    if same is None:  # the key is ts alone
        return not pc.all(pc.greater(ts.slice(1), ts.slice(0, n - 1))).as_py()
    rising = pc.greater(ts.slice(1), ts.slice(0, n - 1))
    if pc.any(pc.and_(same, pc.invert(rising))).as_py():
        return True
    run_starts = table.select(groups).filter(
        pa.concat_arrays([pa.array([True]), pc.invert(same).combine_chunks()])
    )
    return run_starts.group_by(groups).aggregate([]).num_rows != run_starts.num_rows


def _normalize_column(table: str, column: str, values: pd.Series) -> pd.Series:
    kind = column_type(column)
    where = f"{table}.{column}"
    if kind == "ts":
        if not isinstance(values.dtype, pd.DatetimeTZDtype):
            sample = values.iloc[0] if len(values) else None
            raise InputError(
                f"{where}: dtype {values.dtype} (first value {sample!r}) is not a timezone-aware "
                "datetime; convert with .astype('datetime64[ns, UTC]')"
            )
        values = values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        if (values.array.asi8 % 1000 != 0).any():
            # Both backends keep microseconds; dropping the rest here keeps keys comparable.
            values = values.dt.floor("us")
        return values
    if kind == "f64":
        try:
            return values.astype("float64")
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: not numeric ({exc})") from None
    if kind == "bool":
        if values.isna().any() or not pd.api.types.is_bool_dtype(values):
            raise InputError(f"{where}: expected True/False values, got dtype {values.dtype}")
        return values.astype(bool)
    if pd.api.types.is_string_dtype(values):
        return values
    return values.astype("str").where(values.notna(), None)
