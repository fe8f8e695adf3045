"""One ticker's replayed bars with the model's out-of-sample signals and probabilities aligned.

The signals are the walk-forward's ``signals.csv`` (``ts,ticker,signal,confidence`` and, when
present, ``p_up,p_down,p_flat``), the same file ``python -m app backtest --signals`` runs. The
rows are checked by the backtest's own parser (``app.backtest.signals_io.check_signals``), so the
environment and the backtest accept and reject the same rows. Without probability columns the
chosen class gets ``confidence`` and the other two share the rest equally.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from app.backtest.signals_io import SIGNAL_COLUMNS, SignalBatch, check_signals
from app.errors import InputError
from app.types import AssetClass

PROB_COLUMNS: tuple[str, ...] = ("p_up", "p_down", "p_flat")
_CLASS_OF_SIGNAL = {"BUY": 0, "SELL": 1, "HOLD": 2}
_SIGNAL_OF_CLASS = ("BUY", "SELL", "HOLD")


@dataclass(frozen=True, slots=True)
class MarketSeries:
    """Bars of one ticker (``ts, open, high, low, close``) and, per bar, the model's view.

    ``probs`` is (n, 3) [P(UP), P(DOWN), P(FLAT)], NaN on bars without a signal; ``signal`` is
    BUY/SELL/HOLD or "" on those bars; ``confidence`` is the file's confidence (0 without one).
    """

    symbol: str
    asset_class: AssetClass
    bars: pd.DataFrame
    probs: np.ndarray
    signal: np.ndarray
    confidence: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.bars)
        if n < 2:
            raise InputError(f"ticker={self.symbol!r}: {n} bars, need at least 2")
        for name in ("probs", "signal", "confidence"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"MarketSeries.{name}: {len(getattr(self, name))} rows != {n}")

    def __len__(self) -> int:
        return len(self.bars)

    @property
    def has_signal(self) -> np.ndarray:
        return self.signal != ""

    @property
    def ts(self) -> pd.Series:
        return self.bars["ts"]

    def between(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> MarketSeries:
        """The bars with ``start <= ts < end`` (either bound open); the rows stay aligned."""
        keep = np.ones(len(self), dtype=bool)
        if start is not None:
            keep &= (self.ts >= start).to_numpy()
        if end is not None:
            keep &= (self.ts < end).to_numpy()
        idx = np.flatnonzero(keep)
        if idx.size < 2:
            raise InputError(
                f"ticker={self.symbol!r}: only {idx.size} bar(s) in [{start}, {end}), need 2"
            )
        return MarketSeries(
            self.symbol,
            self.asset_class,
            self.bars.iloc[idx].reset_index(drop=True),
            self.probs[idx],
            self.signal[idx],
            self.confidence[idx],
        )

    def signals_frame(self) -> pd.DataFrame:
        """The signal rows as the backtest takes them (``ts, ticker, signal, confidence``)."""
        mask = self.has_signal
        return pd.DataFrame(
            {
                "ts": self.ts[mask].to_numpy(),
                "ticker": self.symbol,
                "signal": self.signal[mask],
                "confidence": self.confidence[mask],
            }
        )

    def signal_span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last bar time that carries a signal."""
        ts = self.ts[self.has_signal]
        if ts.empty:
            raise InputError(f"ticker={self.symbol!r}: no signal falls on its bars")
        return ts.iloc[0], ts.iloc[-1]


def read_signals_table(path: str | Path) -> pd.DataFrame:
    """The raw signals CSV as strings (the frame ``check_signals`` parses)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"signals file {path} does not exist")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"signals file {path}: cannot be read as CSV ({exc})") from exc
    missing = [c for c in SIGNAL_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(f"signals file {path}: missing column(s) {missing}")
    return raw


def build_series(
    raw: pd.DataFrame, bars: Mapping[str, pd.DataFrame], symbol: str, asset_class: AssetClass
) -> tuple[MarketSeries, SignalBatch]:
    """Align the checked signal rows of ``symbol`` (and their probabilities) to its bars."""
    if symbol not in bars:
        raise InputError(f"ticker={symbol!r}: no prices given (have {sorted(bars)})")
    batch = check_signals(raw, bars)
    frame = bars[symbol][["ts", "open", "high", "low", "close"]].reset_index(drop=True)
    frame["ts"] = frame["ts"].astype("datetime64[ns, UTC]")
    mine = batch.signals[batch.signals["ticker"] == symbol]
    n = len(frame)
    probs = np.full((n, 3), np.nan)
    signal = np.full(n, "", dtype=object)
    confidence = np.zeros(n)
    rows = pd.DatetimeIndex(frame["ts"]).get_indexer(pd.DatetimeIndex(mine["ts"]))
    signal[rows] = mine["signal"].to_numpy()
    confidence[rows] = mine["confidence"].to_numpy(np.float64)
    probs[rows] = _probabilities(raw, mine)
    series = MarketSeries(symbol, asset_class, frame, probs, signal.astype(str), confidence)
    return series, batch


def _probabilities(raw: pd.DataFrame, accepted: pd.DataFrame) -> np.ndarray:
    """[p_up, p_down, p_flat] for each accepted row: from the file's columns when it has them
    (each finite in [0, 1], summing to 1 within 1e-3), else from signal and confidence."""
    if not all(c in raw.columns for c in PROB_COLUMNS):
        conf = accepted["confidence"].to_numpy(np.float64)
        out = np.repeat(((1.0 - conf) / 2.0)[:, None], 3, axis=1)
        cls = accepted["signal"].map(_CLASS_OF_SIGNAL).to_numpy()
        out[np.arange(len(out)), cls] = conf
        return out
    table = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                raw["ts"].str.strip(), utc=True, errors="coerce", format="ISO8601"
            ),
            "ticker": raw["ticker"].astype(str).str.strip(),
        }
    )
    for c in PROB_COLUMNS:
        table[c] = pd.to_numeric(raw[c], errors="coerce")
    table = table.dropna(subset=["ts"]).drop_duplicates(["ticker", "ts"], keep="first")
    table["ts"] = table["ts"].astype("datetime64[ns, UTC]")
    merged = accepted[["ts", "ticker"]].merge(table, on=["ts", "ticker"], how="left")
    values = merged[list(PROB_COLUMNS)].to_numpy(np.float64)
    bad = ~np.isfinite(values) | (values < 0.0) | (values > 1.0)
    bad_rows = bad.any(axis=1) | (np.abs(values.sum(axis=1) - 1.0) > 1e-3)
    if bad_rows.any():
        i = int(np.argmax(bad_rows))
        row = merged.iloc[i]
        raise InputError(
            f"signals: ticker={row['ticker']} ts={row['ts'].isoformat()}: "
            f"p_up,p_down,p_flat={values[i].tolist()} must be in [0, 1] and sum to 1"
        )
    return values


def signals_from_probs(probs: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """A signals table from per-bar probabilities (``ts, p_up, p_down, p_flat``): the most
    likely class maps to BUY/SELL/HOLD and its probability is the confidence (DESIGN.md,
    Signals). Used to turn the simulator's oracle file into a signals CSV."""
    missing = [c for c in ("ts", *PROB_COLUMNS) if c not in probs.columns]
    if missing:
        raise InputError(f"probabilities: missing column(s) {missing}")
    values = probs[list(PROB_COLUMNS)].to_numpy(np.float64)
    cls = values.argmax(axis=1)
    out = pd.DataFrame(
        {
            "ts": probs["ts"].to_numpy(),
            "ticker": ticker,
            "signal": np.asarray(_SIGNAL_OF_CLASS, dtype=object)[cls],
            "confidence": values.max(axis=1),
        }
    )
    for k, c in enumerate(PROB_COLUMNS):
        out[c] = values[:, k]
    return out
