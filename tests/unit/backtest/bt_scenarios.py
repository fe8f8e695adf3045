"""Scripted bar series for backtest tests: flat calm bars with hand-placed moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from app.backtest.engine import BacktestConfig
from app.config import CostSettings, RiskSettings
from app.types import AssetClass

T0 = datetime(2025, 1, 1, tzinfo=UTC)
WARMUP = 20  # bars before the first signal, so ATR(14) exists


def calm_bars(
    n: int, price: float = 100.0, half_range: float = 0.1, start: datetime = T0
) -> pd.DataFrame:
    """``n`` bars with open = close = ``price`` and high/low = price +/- half_range (ATR ~ 0.2)."""
    ts = pd.date_range(start, periods=n, freq="5min", tz="UTC").astype("datetime64[ns, UTC]")
    return pd.DataFrame(
        {
            "ts": ts,
            "open": np.full(n, price),
            "high": np.full(n, price + half_range),
            "low": np.full(n, price - half_range),
            "close": np.full(n, price),
            "volume": np.full(n, 10.0),
        }
    )


def set_bar(
    frame: pd.DataFrame, i: int, open_: float, high: float, low: float, close: float
) -> None:
    frame.loc[i, ["open", "high", "low", "close"]] = [open_, high, low, close]


def signals(rows: list[tuple[pd.DataFrame, int, str, str, float]]) -> pd.DataFrame:
    """Signal frame from (bars, bar index, ticker, word, confidence) tuples."""
    return pd.DataFrame(
        {
            "ts": pd.Series([b["ts"].iloc[i] for b, i, *_ in rows], dtype="datetime64[ns, UTC]"),
            "ticker": [r[2] for r in rows],
            "signal": [r[3] for r in rows],
            "confidence": [r[4] for r in rows],
        }
    )


def config(
    fee_bps: float = 10.0, slippage_bps: float = 2.0, equity: float = 100_000.0, **risk: object
) -> BacktestConfig:
    costs = CostSettings(
        fee_bps={AssetClass.CRYPTO: fee_bps, AssetClass.STOCKS: fee_bps, AssetClass.FOREX: fee_bps},
        slippage_bps=slippage_bps,
    )
    return BacktestConfig(initial_equity=equity, risk=RiskSettings(**risk), costs=costs)


def at(frame: pd.DataFrame, i: int) -> pd.Timestamp:
    return frame["ts"].iloc[i]


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)
