"""Bars from CSV or Parquet files (the ../shared/data layout, or any layout via a mapping).

A broken line must not kill a file: lines are split first, a line with the wrong number of
fields becomes one ``unparseable`` reject (naming its line number), and the rest is parsed by
pandas' C parser. Column names, the epoch unit and the timestamp format are data
(:class:`CsvLayout`), not code paths.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from app.errors import InputError
from app.schema.bars import (
    BAR_COLUMNS,
    FIVE_MINUTES,
    LINE_ERROR,
    RAW_COLUMNS,
    ValidationResult,
    validate_bars,
)

ONE_MINUTE = pd.Timedelta(minutes=1)
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True, slots=True)
class CsvLayout:
    """How a file names its columns and writes its timestamps.

    ``columns`` maps the file's names to bar columns (``{"Datetime": "ts", "Open": "open"}``);
    unmapped columns keep their names and extra columns are ignored. ``ts_unit`` (s/ms/us/ns)
    reads epoch numbers; ``ts_format`` is a strptime format; ``assume_utc`` declares naive
    timestamps to be UTC (otherwise they are rejected as ``bad_timestamp``).
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    ts_unit: str | None = None
    ts_format: str | None = None
    assume_utc: bool = False
    delimiter: str = ","

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns.values()) - set(RAW_COLUMNS))
        if unknown:
            raise InputError(f"column mapping targets {unknown}: expected names in {RAW_COLUMNS}")
        if len(self.delimiter) != 1:
            raise InputError(f"delimiter={self.delimiter!r}: must be one character")


# Yahoo Finance / yfinance CSV exports: Datetime,Open,High,Low,Close,Volume (tz-aware stamps).
YFINANCE_LAYOUT = CsvLayout(
    columns={
        "Datetime": "ts",
        "Open": "open",
        "High": "high",
        "Low": "low",
        "Close": "close",
        "Volume": "volume",
    }
)


class CsvSource:
    """One CSV/Parquet file of bars (5-minute, or 1-minute resampled to 5 on request)."""

    def __init__(
        self,
        path: str | Path,
        *,
        layout: CsvLayout | None = None,
        resample_1m: bool = False,
        drop_incomplete: bool = True,
    ) -> None:
        self.path = Path(path)
        self.layout = layout or CsvLayout()
        self.resample_1m = resample_1m
        self.drop_incomplete = drop_incomplete

    def read_raw(self) -> pd.DataFrame:
        """The file's rows as raw bar columns; the index is the row number rejects report."""
        if self.path.suffix.lower() in PARQUET_SUFFIXES:
            return read_raw_parquet(self.path, self.layout)
        return read_raw_csv(self.path, self.layout)

    def load(self, symbol: str) -> ValidationResult:
        """Read, validate and (optionally) resample: good 5-minute bars plus rejects."""
        raw = self.read_raw()
        interval = ONE_MINUTE if self.resample_1m else FIVE_MINUTES
        result = validate_bars(
            raw,
            symbol,
            interval=interval,
            assume_utc=self.layout.assume_utc,
            ts_unit=self.layout.ts_unit,
            ts_format=self.layout.ts_format,
        )
        if not self.resample_1m:
            return result
        bars, dropped = resample_to_5m(result.good, drop_incomplete=self.drop_incomplete)
        return replace(result, good=bars, incomplete_bins_dropped=dropped)


def symbol_from_filename(path: Path) -> str:
    """``BTCUSDT_5m.csv`` -> ``BTCUSDT`` (the ../shared/data naming)."""
    stem = path.name.split(".", 1)[0]
    symbol = stem.rsplit("_", 1)[0] if "_" in stem else stem
    if not symbol:
        raise InputError(f"{path}: cannot tell the symbol from the file name; pass --symbol")
    return symbol


def read_raw_csv(path: Path, layout: CsvLayout) -> pd.DataFrame:
    """Split lines, reject the ones with a wrong field count, parse the rest with pandas."""
    text = _read_text(path)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError(f"{path}: empty file (no header line)")
    header = [h.strip() for h in next(csv.reader([lines[0]], delimiter=layout.delimiter))]
    rename = _rename_map(path, header, layout)

    body = pd.Series(lines[1:], dtype="str")
    line_no = np.arange(2, len(lines) + 1)
    present = body.str.strip().ne("").to_numpy()  # blank lines are not rows
    body, line_no = body[present].reset_index(drop=True), line_no[present]
    n_fields = _field_counts(body, layout.delimiter, quoted='"' in text)
    fits = n_fields == len(header)

    ts_source = next(src for src, dst in rename.items() if dst == "ts")
    parsed = pd.read_csv(
        io.StringIO("\n".join([lines[0], *body[fits].tolist()])),
        sep=layout.delimiter,
        dtype={ts_source: "str"},
        skipinitialspace=True,
        engine="c",
    )
    parsed.columns = [c.strip() for c in parsed.columns]
    parsed = parsed.rename(columns=rename)[list(RAW_COLUMNS)]
    parsed.index = line_no[fits]

    if fits.all():
        return parsed
    broken_lines = body[~fits].tolist()
    broken = pd.DataFrame(
        {
            **{c: pd.Series([None] * len(broken_lines), dtype=object) for c in RAW_COLUMNS},
            LINE_ERROR: [
                f"line has {k} fields, expected {len(header)}: {line[:120]!r}"
                for k, line in zip(n_fields[~fits].tolist(), broken_lines, strict=True)
            ],
        },
        index=line_no[~fits],
    )
    parsed[LINE_ERROR] = None
    both = pd.concat([parsed.astype({c: object for c in RAW_COLUMNS}), broken])
    return both.sort_index(kind="stable")


def read_raw_parquet(path: Path, layout: CsvLayout) -> pd.DataFrame:
    """A Parquet file's bar columns; rows are numbered from 0."""
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    if isinstance(frame.index, pd.DatetimeIndex) and frame.index.name:
        frame = frame.reset_index()
    rename = _rename_map(path, [str(c) for c in frame.columns], layout)
    out = frame.rename(columns=rename)[list(RAW_COLUMNS)]
    return out.reset_index(drop=True)


def resample_to_5m(bars: pd.DataFrame, *, drop_incomplete: bool = True) -> tuple[pd.DataFrame, int]:
    """1-minute bars -> 5-minute bars on ``[t, t+5m)`` bins labelled by their start.

    open = first, high = max, low = min, close = last, volume = sum. Returns the bars and how
    many incomplete bins (fewer than five 1-minute bars) were dropped, when ``drop_incomplete``.
    """
    if bars.empty:
        return bars[list(BAR_COLUMNS)].copy(), 0
    start = bars["ts"].dt.floor(FIVE_MINUTES)
    grouped = bars.groupby([bars["symbol"], start], sort=True)
    out = grouped.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        minutes=("close", "size"),
    ).reset_index()
    dropped = 0
    if drop_incomplete:
        complete = out["minutes"] == 5
        dropped = int((~complete).sum())
        out = out[complete]
    out["ts"] = out["ts"].astype("datetime64[ns, UTC]")
    return out[list(BAR_COLUMNS)].reset_index(drop=True), dropped


# --------------------------------------------------------------------------- helpers


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a directory, expected a file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc


def _rename_map(path: Path, header: list[str], layout: CsvLayout) -> dict[str, str]:
    """File column -> bar column, or InputError naming the file and the missing columns."""
    mapping = {src: dst for src, dst in layout.columns.items() if src in header}
    rename = {**{c: c for c in header if c in RAW_COLUMNS and c not in mapping.values()}, **mapping}
    found = set(rename.values())
    missing = [c for c in RAW_COLUMNS if c not in found]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}; header is {header} "
            "(map other names with a column mapping, e.g. --columns Datetime=ts,Open=open)"
        )
    return {src: dst for src, dst in rename.items() if dst in RAW_COLUMNS}


def _field_counts(body: pd.Series, delimiter: str, *, quoted: bool) -> np.ndarray:
    """Fields per line; the csv module only when quotes make counting separators wrong."""
    if body.empty:
        return np.zeros(0, dtype=np.int64)
    if not quoted:
        return (body.str.count(re.escape(delimiter)) + 1).to_numpy(dtype=np.int64)
    return np.fromiter(
        (len(row) for row in csv.reader(body.tolist(), delimiter=delimiter)),
        dtype=np.int64,
        count=len(body),
    )
