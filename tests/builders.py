"""Builders for test objects: one place, so tests stay short and readable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from app.types import Bar

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def bar(symbol: str = "BTCUSDT", i: int = 0, price: float = 100.0, **kw: float) -> Bar:
    """A valid 5-minute bar at T0 + i*5min around ``price``; override any field."""
    fields = dict(open=price, high=price * 1.001, low=price * 0.999, close=price, volume=10.0)
    fields.update(kw)
    return Bar(symbol=symbol, ts=T0 + timedelta(minutes=5 * i), **fields)


def bars_frame(
    n: int = 500, symbol: str = "BTCUSDT", seed: int = 0, start: datetime = T0
) -> pd.DataFrame:
    """A random-walk OHLCV frame with the store's columns (ts as datetime64[ns, UTC])."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0, 0.001, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    ts = pd.date_range(start, periods=n, freq="5min", tz="UTC").astype("datetime64[ns, UTC]")
    return pd.DataFrame(
        {
            "symbol": symbol,
            "ts": ts,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(1, 100, n),
        }
    )
