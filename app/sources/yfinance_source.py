"""5-minute bars from Yahoo Finance through yfinance (optional extra: ``pip install .[yfinance]``).

Yahoo serves 5-minute history for the last 60 days only; longer or older ranges are refused
here with a clear error instead of coming back silently empty. yfinance returns a frame
indexed by a tz-aware DatetimeIndex (exchange time) with columns Open/High/Low/Close/Volume,
in recent versions under a (Price, Ticker) MultiIndex; :func:`yfinance_frame_to_bars` turns
either shape into the bar frame (UTC) that ``validate_bars`` checks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pandas as pd

from app.errors import InputError
from app.schema.bars import BAR_COLUMNS, empty_bars
from app.types import BAR_INTERVAL, require_utc

MAX_HISTORY = timedelta(days=60)
_PRICE_COLUMNS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Volume": "volume",
}


def import_yfinance() -> ModuleType:
    """yfinance, or an InputError saying how to install the optional extra."""
    try:
        return importlib.import_module("yfinance")
    except ImportError as exc:
        raise InputError(
            "the yfinance source needs the optional extra: pip install '.[yfinance]'"
        ) from exc


def yfinance_frame_to_bars(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """A yfinance download/history frame -> bar frame (ts = bar open time in UTC)."""
    if frame is None or frame.empty:
        return empty_bars()
    if isinstance(frame.columns, pd.MultiIndex):
        frame = _single_ticker(frame, symbol)
    missing = [c for c in _PRICE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"yfinance frame for {symbol!r} lacks {missing}; has {list(map(str, frame.columns))}"
        )
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise InputError(f"yfinance frame for {symbol!r}: index is {type(index).__name__}")
    ts = index.tz_convert("UTC") if index.tz is not None else index  # naive: validation decides
    bars = frame[list(_PRICE_COLUMNS)].rename(columns=_PRICE_COLUMNS).astype("float64")
    bars.insert(0, "ts", ts.astype("datetime64[ns, UTC]") if ts.tz is not None else ts)
    bars.insert(0, "symbol", symbol)
    return bars.reset_index(drop=True)[list(BAR_COLUMNS)]


def _single_ticker(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Pick ``symbol``'s columns out of a (Price, Ticker) or (Ticker, Price) MultiIndex."""
    for level in range(frame.columns.nlevels):
        values = frame.columns.get_level_values(level)
        if "Close" in set(values):
            continue
        if symbol not in set(values):
            raise InputError(f"yfinance frame has tickers {sorted(set(values))}, not {symbol!r}")
        return frame.xs(symbol, axis=1, level=level)
    return frame.droplevel(list(range(1, frame.columns.nlevels)), axis=1)


class YFinanceSource:
    """Closed 5-minute bars of one Yahoo symbol (``SPY``, ``EURUSD=X``, ``BTC-USD``)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        download: Callable[..., pd.DataFrame] | None = None,
    ) -> None:
        """``download`` defaults to ``yfinance.download`` (imported on first use)."""
        self._clock = clock
        self._download = download

    def check_range(self, since: datetime, until: datetime | None) -> tuple[datetime, datetime]:
        """Refuse what Yahoo cannot serve: ranges that start more than 60 days ago."""
        require_utc("YFinanceSource", "since", since)
        now = self._clock()
        end = min(until, now) if until is not None else now
        if until is not None:
            require_utc("YFinanceSource", "until", until)
        if since >= end:
            raise InputError(f"since={since.isoformat()} is not before until={end.isoformat()}")
        if now - since > MAX_HISTORY:
            raise InputError(
                f"since={since.isoformat()}: Yahoo keeps 5-minute bars for the last "
                f"{MAX_HISTORY.days} days only (earliest now: {(now - MAX_HISTORY).isoformat()})"
            )
        return since, end

    def history(self, symbol: str, since: datetime, until: datetime | None = None) -> pd.DataFrame:
        """Bars with ``since <= ts < until`` whose 5 minutes are over, oldest first."""
        start, end = self.check_range(since, until)
        download = self._download or import_yfinance().download
        frame = download(
            symbol,
            start=start,
            end=end,
            interval="5m",
            auto_adjust=False,
            prepost=False,
            progress=False,
            threads=False,
        )
        bars = yfinance_frame_to_bars(frame, symbol)
        if not isinstance(bars["ts"].dtype, pd.DatetimeTZDtype):
            raise InputError(f"yfinance returned naive timestamps for {symbol!r}")
        now = self._clock()
        keep = (bars["ts"] >= start) & (bars["ts"] < end) & (bars["ts"] + BAR_INTERVAL <= now)
        return bars[keep].reset_index(drop=True)
