"""Vectorized validation of raw OHLCV rows before they reach the store.

Every price source ends here: a raw frame (strings from a CSV, floats from ccxt, datetimes
from IB) becomes the store's bar frame plus a frame of rejected rows, each with a reason and a
message naming the field and value. A bad row never stops the batch; the good rows are kept.

Rules (first failing rule wins, in this order):
  unparseable      the line had the wrong number of fields, or a price/volume is not a number
  bad_timestamp    ``ts`` cannot be parsed, is out of range, or has no UTC offset while the
                   source did not declare its naive timestamps to be UTC (``assume_utc``)
  nan              a price or volume is missing, NaN or infinite
  nonpositive      a price is <= 0
  negative_volume  volume < 0
  high_low         high < max(open, close), low > min(open, close) or high < low
  off_grid         ``ts`` is not a multiple of the bar interval
  duplicate        the same ``ts`` appeared earlier in the input: the first one is kept
  out_of_order     ``ts`` is earlier than a row accepted before it. Rows are NOT re-sorted:
                   a feed that goes back in time is broken, and silently sorting would hide
                   it (and could let a late, revised bar replace the one already used)
Rows whose key is already in the store are not rejects; the store's idempotent write counts
them (``duplicates_skipped``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.errors import InputError

BAR_COLUMNS: tuple[str, ...] = ("symbol", "ts", "open", "high", "low", "close", "volume")
RAW_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
REASONS: tuple[str, ...] = (
    "unparseable",
    "bad_timestamp",
    "nan",
    "nonpositive",
    "negative_volume",
    "high_low",
    "off_grid",
    "duplicate",
    "out_of_order",
)
REJECT_COLUMNS: tuple[str, ...] = ("row", "reason", "detail", *RAW_COLUMNS)
# Optional raw column a reader fills when a whole line could not be split into fields;
# such a row is rejected as ``unparseable`` with this text as the detail.
LINE_ERROR = "line_error"
FIVE_MINUTES = pd.Timedelta(minutes=5)
TS_UNITS = ("s", "ms", "us", "ns")

_NAN_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none", "-nan", "#n/a"})
_OFFSET_PATTERN = r"(?:[zZ]|[+-]\d\d:?\d\d)$"
_NS_PER = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_UNSET = 0  # code of "no reason" in the per-row reason array


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """Good bars (store columns, sorted by ts), rejected rows, and counts by reason.

    ``rows_read`` counts input rows; after 1-minute -> 5-minute resampling ``good`` holds
    fewer, wider bars, and ``incomplete_bins_dropped`` says how many partial bins were left out.
    """

    good: pd.DataFrame
    rejects: pd.DataFrame
    counts: dict[str, int]
    rows_read: int
    incomplete_bins_dropped: int = 0

    @property
    def rows_rejected(self) -> int:
        return len(self.rejects)

    def nonzero_counts(self) -> dict[str, int]:
        return {reason: n for reason, n in self.counts.items() if n}


def empty_bars() -> pd.DataFrame:
    """A bar frame with no rows and the store's dtypes."""
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS})
    frame["symbol"] = frame["symbol"].astype(object)
    frame["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def validate_bars(
    raw: pd.DataFrame,
    symbol: str,
    *,
    interval: pd.Timedelta = FIVE_MINUTES,
    assume_utc: bool = False,
    ts_unit: str | None = None,
    ts_format: str | None = None,
) -> ValidationResult:
    """Split ``raw`` into good bars and rejected rows.

    ``raw`` has the columns ``ts, open, high, low, close, volume`` (any dtypes; extra columns
    are ignored) and its index gives the row numbers the rejects report (a CSV reader uses
    the file's line numbers). ``ts`` may be strings (ISO-8601, or ``ts_format``), epoch
    numbers in ``ts_unit``, or datetimes. Naive timestamps are accepted only with
    ``assume_utc=True``: a source must say its clock is UTC, we never guess.
    """
    if not symbol or not isinstance(symbol, str):
        raise InputError(f"symbol={symbol!r}: a non-empty symbol is required")
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(f"raw bars lack column(s) {missing}; have {list(raw.columns)}")
    if ts_unit is not None and ts_unit not in TS_UNITS:
        raise InputError(f"ts_unit={ts_unit!r}: expected one of {TS_UNITS}")
    interval_ns = int(pd.Timedelta(interval).value)
    if interval_ns <= 0:
        raise InputError(f"interval={interval!r}: must be positive")

    n = len(raw)
    reason = np.zeros(n, dtype=np.int8)  # index into REASONS + 1; 0 = still good
    detail = np.full(n, None, dtype=object)

    def mark(mask: np.ndarray, name: str, text: _LazyText | np.ndarray | str) -> None:
        """Give still-unmarked rows in ``mask`` the reason ``name`` (first rule wins)."""
        hit = mask & (reason == _UNSET)
        if not hit.any():
            return
        reason[hit] = REASONS.index(name) + 1
        detail[hit] = text[hit] if not isinstance(text, str) else text

    if LINE_ERROR in raw.columns:
        line_error = raw[LINE_ERROR].to_numpy(dtype=object)
        has_error = pd.notna(line_error)
        mark(has_error, "unparseable", line_error)

    values: dict[str, np.ndarray] = {}
    for name in PRICE_COLUMNS + ("volume",):
        numbers, garbage = _to_float(raw[name])
        values[name] = numbers
        mark(garbage, "unparseable", _describe(raw[name], name, "is not a number"))

    ts_ns, ts_bad, ts_why = _parse_ts(
        raw["ts"], assume_utc=assume_utc, ts_unit=ts_unit, ts_format=ts_format
    )
    mark(ts_bad, "bad_timestamp", _describe(raw["ts"], "ts", "") + ts_why)

    for name in PRICE_COLUMNS + ("volume",):
        mark(
            ~np.isfinite(values[name]),
            "nan",
            _describe(raw[name], name, "is missing or not finite"),
        )
    for name in PRICE_COLUMNS:
        mark(values[name] <= 0, "nonpositive", _describe(raw[name], name, "must be > 0"))
    mark(
        values["volume"] < 0, "negative_volume", _describe(raw["volume"], "volume", "must be >= 0")
    )

    o, h, lo, c = (values[k] for k in PRICE_COLUMNS)
    top = np.maximum(o, c)
    bottom = np.minimum(o, c)
    with np.errstate(invalid="ignore"):
        high_below = (h < top) | (h < lo)
        low_above = lo > bottom
    mark(high_below, "high_low", _pair("high", h, "< max(open, close)", top))
    mark(low_above, "high_low", _pair("low", lo, "> min(open, close)", bottom))

    mark(
        (ts_ns % interval_ns) != 0,
        "off_grid",
        _describe(raw["ts"], "ts", f"is not on the {_minutes(interval_ns)} grid"),
    )

    _mark_sequence(ts_ns, reason, mark, raw["ts"])

    good_mask = reason == _UNSET
    good = pd.DataFrame(
        {
            "symbol": np.full(int(good_mask.sum()), symbol, dtype=object),
            "ts": pd.to_datetime(ts_ns[good_mask], utc=True).astype("datetime64[ns, UTC]"),
            **{k: values[k][good_mask] for k in PRICE_COLUMNS + ("volume",)},
        }
    )
    rejects = _rejects_frame(raw, ~good_mask, reason, detail)
    codes = np.bincount(reason, minlength=len(REASONS) + 1)
    counts = {name: int(codes[i + 1]) for i, name in enumerate(REASONS)}
    return ValidationResult(
        good=good.reset_index(drop=True), rejects=rejects, counts=counts, rows_read=n
    )


# --------------------------------------------------------------------------- helpers


def _minutes(interval_ns: int) -> str:
    seconds = interval_ns / 1e9
    return f"{seconds / 60:g}-minute" if seconds >= 60 else f"{seconds:g}-second"


def _to_float(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Column -> float64 values and a mask of non-numeric text (missing values are not garbage)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan), np.zeros(len(column), dtype=bool)
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    garbage = np.zeros(len(column), dtype=bool)
    suspects = np.flatnonzero(np.isnan(numbers))
    if suspects.size:
        text = column.iloc[suspects]
        tokens = text.astype(object).where(text.notna(), "").astype(str).str.strip().str.lower()
        garbage[suspects] = ~tokens.isin(_NAN_TOKENS).to_numpy()
    return numbers, garbage


def _parse_ts(
    column: pd.Series, *, assume_utc: bool, ts_unit: str | None, ts_format: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column -> (int64 ns since epoch, bad mask, why-text per row for the bad ones)."""
    n = len(column)
    why = np.full(n, "", dtype=object)
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        parsed = column.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(column):
        if not assume_utc:
            why[:] = " is naive: the source must declare its timestamps UTC (assume_utc)"
            return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool), why
        parsed = column.dt.tz_localize("UTC")
    elif ts_unit is not None:
        numbers = pd.to_numeric(column, errors="coerce")
        parsed = pd.to_datetime(numbers, unit=ts_unit, utc=True, errors="coerce")
    elif pd.api.types.is_numeric_dtype(column):
        raise InputError(
            f"ts holds numbers (dtype {column.dtype}): give the epoch unit, ts_unit in {TS_UNITS}"
        )
    else:
        text = column if pd.api.types.is_string_dtype(column) else column.astype("str")
        text = text.fillna("").str.strip()
        parsed = pd.to_datetime(text, utc=True, format=ts_format or "ISO8601", errors="coerce")
        if not assume_utc:
            naive = ~text.str.endswith(("Z", "z")).to_numpy()
            if naive.any():  # only the rare non-Z strings pay for the regex
                offset = text[naive].str.contains(_OFFSET_PATTERN, regex=True).to_numpy()
                naive[np.flatnonzero(naive)[offset]] = False
            if ts_format is not None and ("%z" in ts_format or "%Z" in ts_format):
                naive[:] = False
            naive &= parsed.notna().to_numpy()
            why[naive] = " has no UTC offset (declare the source UTC with assume_utc)"
            parsed = parsed.where(~naive)
    ns, out_of_range = _as_ns(parsed)
    bad = parsed.isna().to_numpy() | out_of_range
    why[bad & (why == "")] = " is not a valid timestamp"
    return ns, bad, why


def _as_ns(parsed: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Datetime series of any unit -> int64 ns, with a mask of values outside the ns range."""
    unit = parsed.dt.unit
    raw = parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().view("int64")
    nat = parsed.isna().to_numpy()
    factor = _NS_PER[unit]
    limit = np.iinfo(np.int64).max // factor
    out_of_range = ~nat & (np.abs(raw) >= limit)
    ns = np.where(nat | out_of_range, 0, raw) * factor
    return ns.astype(np.int64), out_of_range


def _mark_sequence(
    ts_ns: np.ndarray, reason: np.ndarray, mark: Callable[..., None], raw_ts: pd.Series
) -> None:
    """duplicate / out_of_order among the rows still good.

    A row rejected as out_of_order lies below the running maximum, so it never raises it:
    the running maximum over all still-good rows equals the one over accepted rows.
    """
    candidates = np.flatnonzero(reason == _UNSET)
    if candidates.size == 0:
        return
    ts = ts_ns[candidates]
    dup = pd.Series(ts).duplicated(keep="first").to_numpy()
    previous_max = np.maximum.accumulate(ts)
    previous_max = np.concatenate([[np.iinfo(np.int64).min], previous_max[:-1]])
    late = ts < previous_max
    dup_mask = np.zeros(len(ts_ns), dtype=bool)
    dup_mask[candidates[dup]] = True
    mark(dup_mask, "duplicate", _describe(raw_ts, "ts", "appeared earlier in the input"))
    late_mask = np.zeros(len(ts_ns), dtype=bool)
    late_mask[candidates[late]] = True
    before = np.zeros(len(ts_ns), dtype=np.int64)
    before[candidates] = previous_max
    text = np.full(len(ts_ns), "", dtype=object)
    idx = np.flatnonzero(late_mask)
    if idx.size:
        earlier = pd.to_datetime(before[idx], utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
        text[idx] = [
            f"ts={raw_ts.iloc[i]!r} is earlier than accepted ts={e}"
            for i, e in zip(idx, earlier, strict=True)
        ]
    mark(late_mask, "out_of_order", text)


class _LazyText:
    """Messages built only for the rows that are actually rejected (keeps 1M rows fast)."""

    def __init__(self, build: Callable[[np.ndarray], np.ndarray]) -> None:
        self._build = build

    def __getitem__(self, mask: np.ndarray) -> np.ndarray:
        return self._build(np.flatnonzero(mask))

    def __add__(self, other: np.ndarray) -> _LazyText:
        return _LazyText(
            lambda idx: np.array(
                [a + b for a, b in zip(self._build(idx), other[idx], strict=True)], dtype=object
            )
        )


def _describe(column: pd.Series, name: str, what: str) -> _LazyText:
    def build(idx: np.ndarray) -> np.ndarray:
        values = column.iloc[idx].tolist()
        return np.array([f"{name}={v!r} {what}".rstrip() for v in values], dtype=object)

    return _LazyText(build)


def _pair(name: str, value: np.ndarray, relation: str, other: np.ndarray) -> _LazyText:
    def build(idx: np.ndarray) -> np.ndarray:
        return np.array(
            [f"{name}={float(value[i])!r} {relation}={float(other[i])!r}" for i in idx.tolist()],
            dtype=object,
        )

    return _LazyText(build)


def _rejects_frame(
    raw: pd.DataFrame, mask: np.ndarray, reason: np.ndarray, detail: np.ndarray
) -> pd.DataFrame:
    idx = np.flatnonzero(mask)
    subset = raw.iloc[idx]
    frame = pd.DataFrame(
        {
            "row": subset.index.to_numpy(),
            "reason": [REASONS[code - 1] for code in reason[idx].tolist()],
            "detail": detail[idx].astype(str) if idx.size else np.array([], dtype=object),
        }
    )
    for col in RAW_COLUMNS:
        frame[col] = (
            subset[col].astype(object).where(subset[col].notna(), "").astype(str).to_numpy()
        )
    return frame.reset_index(drop=True)
