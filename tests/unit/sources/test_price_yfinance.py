"""YFinanceSource: the frame shapes yfinance returns -> bars; Yahoo's 60-day 5m limit."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from app.errors import InputError
from app.schema.bars import validate_bars
from app.sources.yfinance_source import (
    YFinanceSource,
    import_yfinance,
    yfinance_frame_to_bars,
)

NOW = datetime(2025, 8, 28, 20, 0, tzinfo=UTC)


def _yahoo_index(n: int) -> pd.DatetimeIndex:
    # what yfinance returns: exchange-local, tz-aware, named Datetime
    start = pd.Timestamp("2025-08-28 09:30", tz="America/New_York")
    return pd.date_range(start, periods=n, freq="5min", name="Datetime")


def _prices(n: int) -> dict[str, np.ndarray]:
    close = 600.0 + np.arange(n, dtype=float)
    return {
        "Adj Close": close,
        "Close": close,
        "High": close + 1,
        "Low": close - 1,
        "Open": close - 0.5,
        "Volume": np.full(n, 1_000_000, dtype=np.int64),
    }


def _download_frame(tickers: list[str], n: int = 4) -> pd.DataFrame:
    """yf.download's shape: columns MultiIndex (Price, Ticker)."""
    columns, data = [], []
    for price, values in _prices(n).items():
        for k, ticker in enumerate(tickers):
            columns.append((price, ticker))
            data.append(values + 100 * k)
    frame = pd.DataFrame(np.column_stack(data), index=_yahoo_index(n))
    frame.columns = pd.MultiIndex.from_tuples(columns, names=["Price", "Ticker"])
    return frame


def test_download_multiindex_frame_maps_to_utc_bars() -> None:
    bars = yfinance_frame_to_bars(_download_frame(["SPY", "QQQ"]), "QQQ")
    assert list(bars.columns) == ["symbol", "ts", "open", "high", "low", "close", "volume"]
    assert str(bars["ts"].dtype) == "datetime64[ns, UTC]"
    assert bars["ts"].iloc[0] == pd.Timestamp("2025-08-28T13:30:00Z")  # 09:30 New York (EDT)
    assert bars["close"].tolist() == [700.0, 701.0, 702.0, 703.0]  # QQQ's columns, not SPY's
    assert bars["open"].iloc[0] == 699.5 and (bars["symbol"] == "QQQ").all()
    assert len(validate_bars(bars, "QQQ").good) == 4


def test_ticker_level_first_and_flat_history_frames() -> None:
    swapped = _download_frame(["SPY"]).swaplevel(axis=1)
    assert yfinance_frame_to_bars(swapped, "SPY")["close"].iloc[-1] == 603.0
    flat = pd.DataFrame(_prices(3), index=_yahoo_index(3)).assign(Dividends=0.0)
    flat["Stock Splits"] = 0.0  # Ticker.history's extra columns are ignored
    assert yfinance_frame_to_bars(flat, "SPY")["high"].tolist() == [601.0, 602.0, 603.0]


def test_wrong_ticker_or_shape_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"tickers \['SPY'\], not 'AAPL'"):
        yfinance_frame_to_bars(_download_frame(["SPY"]), "AAPL")
    with pytest.raises(InputError, match=r"lacks \['Volume'\]"):
        yfinance_frame_to_bars(
            pd.DataFrame(_prices(2), index=_yahoo_index(2)).drop(columns="Volume"), "SPY"
        )
    assert yfinance_frame_to_bars(pd.DataFrame(), "SPY").empty


def test_ranges_beyond_yahoos_60_days_are_refused() -> None:
    source = YFinanceSource(clock=lambda: NOW)
    since, end = source.check_range(NOW - timedelta(days=59), None)
    assert end == NOW
    with pytest.raises(InputError, match="last 60 days only"):
        source.check_range(NOW - timedelta(days=61), NOW - timedelta(days=50))
    with pytest.raises(InputError, match="not before"):
        source.check_range(NOW - timedelta(days=1), NOW - timedelta(days=2))


def test_history_requests_5m_bars_and_drops_the_forming_one() -> None:
    calls: list[tuple[str, dict]] = []

    def download(symbol: str, **kwargs: object) -> pd.DataFrame:
        calls.append((symbol, kwargs))
        return _download_frame(["SPY"], n=6)  # 13:30 .. 13:55 UTC

    now = datetime(2025, 8, 28, 13, 58, tzinfo=UTC)  # the 13:55 bar is still forming
    source = YFinanceSource(clock=lambda: now, download=download)
    bars = source.history("SPY", now - timedelta(days=1))
    assert bars["ts"].dt.minute.tolist() == [30, 35, 40, 45, 50]
    symbol, kwargs = calls[0]
    assert symbol == "SPY" and kwargs["interval"] == "5m" and kwargs["prepost"] is False
    assert kwargs["start"] == now - timedelta(days=1) and kwargs["end"] == now


def test_missing_optional_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yfinance", None)  # what an environment without it sees
    with pytest.raises(InputError, match=r"pip install '\.\[yfinance\]'"):
        import_yfinance()
    with pytest.raises(InputError, match="optional extra"):
        YFinanceSource(clock=lambda: NOW).history("SPY", NOW - timedelta(days=5))
