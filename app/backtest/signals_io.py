"""Signals for a backtest, checked against the bars they will run on (frames in, no IO).

A signals frame (a CSV read as strings by ``app.sources.backtest_files.read_signals_csv``, or
the EMA rule's typed output) has ``ts,ticker,signal,confidence``: ``ts`` is the OPEN time of
the bar the signal was computed on (ISO-8601 with a UTC offset, e.g. ``2025-01-01T00:05:00Z``),
``signal`` one of BUY/SELL/HOLD (case-insensitive), ``confidence`` in [0, 1]. A bad row is
rejected with a reason and counted; the good rows run. A missing column is an InputError.
Reasons (first failing rule wins, in this order):

  bad_timestamp      ``ts`` unparseable, or without a UTC offset (naive times are refused)
  unknown_ticker     no prices were given for ``ticker``
  unknown_signal     ``signal`` is not BUY, SELL or HOLD
  confidence_nan     ``confidence`` missing, NaN or not a number
  confidence_out_of_range  ``confidence`` outside [0, 1]
  ts_not_on_bar      no bar of that ticker opened at ``ts``
  duplicate          the same (ticker, ts) appeared earlier in the file (the first is kept)

Prices come from ``<TICKER>_5m.csv`` files (``app.sources.backtest_files``) or from the store;
the callers read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from app.errors import InputError

SIGNAL_COLUMNS: tuple[str, ...] = ("ts", "ticker", "signal", "confidence")
SIGNAL_WORDS: frozenset[str] = frozenset({"BUY", "SELL", "HOLD"})
REJECT_REASONS: tuple[str, ...] = (
    "bad_timestamp",
    "unknown_ticker",
    "unknown_signal",
    "confidence_nan",
    "confidence_out_of_range",
    "ts_not_on_bar",
    "duplicate",
)
_OFFSET_PATTERN = r"(?:[zZ]|[+-]\d\d:?\d\d)$"


@dataclass(frozen=True, slots=True)
class SignalBatch:
    """Good signals (sorted by ts, ticker) and what was rejected, by reason."""

    signals: pd.DataFrame
    rows_read: int
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return len(self.signals)

    def summary(self) -> dict[str, object]:
        return {
            "read": self.rows_read,
            "accepted": self.accepted,
            "rejected": self.rows_read - self.accepted,
            "rejected_by_reason": {k: v for k, v in self.rejected.items() if v},
        }


def check_signals(
    raw: pd.DataFrame, bars: Mapping[str, pd.DataFrame], origin: str = "signals frame"
) -> SignalBatch:
    """Validate raw signal rows (strings or typed values) against ``bars`` (ticker -> frame).

    ``origin`` names where the rows came from in errors (e.g. ``signals file s.csv``).
    """
    missing = [c for c in SIGNAL_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(f"{origin}: missing column(s) {missing}; have {list(raw.columns)}")
    n = len(raw)
    reason = np.full(n, "", dtype=object)

    def mark(mask: np.ndarray, name: str) -> None:
        reason[mask & (reason == "")] = name

    typed = (
        pd.api.types.is_datetime64_any_dtype(raw["ts"])
        and getattr(raw["ts"].dtype, "tz", None) is not None
    )
    if typed:  # already aware datetimes (e.g. from the EMA rule): nothing to parse
        ts = raw["ts"]
        has_offset = np.ones(n, dtype=bool)
    else:
        ts_text = raw["ts"].astype(str).str.strip()
        ts = pd.to_datetime(ts_text, utc=True, errors="coerce", format="ISO8601")
        has_offset = ts_text.str.contains(_OFFSET_PATTERN, regex=True).to_numpy()
    mark(ts.isna().to_numpy() | ~has_offset, "bad_timestamp")
    ticker = raw["ticker"].astype(str).str.strip()
    mark(~ticker.isin(list(bars)).to_numpy(), "unknown_ticker")
    word = raw["signal"].astype(str).str.strip().str.upper()
    mark(~word.isin(list(SIGNAL_WORDS)).to_numpy(), "unknown_signal")
    confidence = pd.to_numeric(raw["confidence"], errors="coerce").to_numpy(np.float64)
    mark(~np.isfinite(confidence), "confidence_nan")
    mark((confidence < 0.0) | (confidence > 1.0), "confidence_out_of_range")

    frame = pd.DataFrame(
        {
            "ts": ts.astype("datetime64[ns, UTC]"),
            "ticker": ticker,
            "signal": word,
            "confidence": confidence,
        }
    )
    pending = reason == ""
    on_bar = np.zeros(n, dtype=bool)
    for sym, bar_frame in bars.items():
        rows = np.flatnonzero(pending & (ticker.to_numpy() == sym))
        if rows.size:
            grid = pd.DatetimeIndex(bar_frame["ts"].astype("datetime64[ns, UTC]"))
            on_bar[rows] = grid.get_indexer(pd.DatetimeIndex(frame["ts"].iloc[rows])) >= 0
    mark(pending & ~on_bar, "ts_not_on_bar")
    ok = reason == ""  # a rejected row does not shadow a later valid one for the same key
    dup = np.zeros(n, dtype=bool)
    dup[ok] = frame.loc[ok].duplicated(subset=["ticker", "ts"], keep="first").to_numpy()
    mark(dup, "duplicate")

    good = frame.loc[reason == ""].sort_values(["ts", "ticker"], kind="stable")
    counts = {r: int((reason == r).sum()) for r in REJECT_REASONS}
    return SignalBatch(signals=good.reset_index(drop=True), rows_read=n, rejected=counts)
