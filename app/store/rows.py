"""A few rows as plain values, checked like a frame batch, for the small-write path.

The execution journal stores one to five rows before every venue call; building a DataFrame
and an Arrow table for them cost ~16 ms of a ~33 ms write (bench/bar_close.py). The rows are
checked here with the same rules as ``prepare_batch`` (every column present, aware UTC
timestamps floored to microseconds, numbers as floats with NaN stored as NULL, booleans as
booleans; an empty key is rejected and counted; of a key repeated in the batch the ``keep`` row
survives), so both write paths store the same values.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import pandas as pd

from app.errors import InputError
from app.schema.tables import KEYS
from app.store.schema import column_type, require_table


@dataclass(frozen=True, slots=True)
class PreparedRows:
    """Rows as value tuples in the table's column order, plus what was thrown out."""

    columns: tuple[str, ...]
    values: tuple[tuple[object, ...], ...]
    rejected_null_key: int
    duplicate_keys: int

    def keys(self, table: str) -> list[tuple[object, ...]]:
        """Each row's key values, in ``KEYS[table]`` order."""
        at = [self.columns.index(k) for k in KEYS[table]]
        return [tuple(row[i] for i in at) for row in self.values]

    def frame(self) -> pd.DataFrame:
        """The rows as a frame (what a failed write hands back as its pending rows)."""
        return pd.DataFrame(list(self.values), columns=list(self.columns))


def prepare_rows(
    table: str, rows: Sequence[Mapping[str, object]], *, keep: Literal["first", "last"]
) -> PreparedRows:
    """Check and normalize ``rows`` for ``table``; InputError names the column and value."""
    columns = require_table(table)
    key = KEYS[table]
    kept: dict[tuple[object, ...], tuple[object, ...]] = {}
    rejected = duplicates = 0
    for n, row in enumerate(rows):
        missing = [c for c in columns if c not in row]
        if missing:
            raise InputError(f"table={table!r}: row {n} lacks columns {missing}")
        values = tuple(_value(table, c, row[c]) for c in columns)
        by_name = dict(zip(columns, values, strict=True))
        k = tuple(by_name[c] for c in key)
        if any(v is None for v in k):
            rejected += 1
            continue
        if k in kept:
            duplicates += 1
            if keep == "first":
                continue
            del kept[k]  # the last one wins, at its own place in the order
        kept[k] = values
    return PreparedRows(columns, tuple(kept.values()), rejected, duplicates)


def _value(table: str, column: str, value: object) -> object:
    kind = column_type(column)
    where = f"{table}.{column}"
    if kind == "ts":
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise InputError(f"{where}={value!r}: not a timezone-aware datetime")
        return value.astimezone(UTC)  # Python datetimes carry microseconds, as both backends
    if kind == "f64":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InputError(f"{where}={value!r}: not numeric")
        number = float(value)
        return None if math.isnan(number) else number
    if kind == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{where}={value!r}: expected True/False")
        return value
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{where}={value!r}: expected text")
