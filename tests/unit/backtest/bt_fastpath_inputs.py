"""Random multi-ticker inputs that exercise every path of the backtester: entries, closes,
stops, take-profits, drawdown halts and their lift, the open-position and rate caps, gaps."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from app.backtest.engine import BacktestConfig
from app.config import CostSettings, RiskSettings
from app.types import AssetClass

SYMBOLS = {"AAA": AssetClass.CRYPTO, "BBB": AssetClass.STOCKS, "CCC": AssetClass.FOREX}

CONFIGS: dict[str, BacktestConfig] = {
    "default": BacktestConfig(),
    "atr_slippage_tight_caps": BacktestConfig(
        costs=CostSettings(slippage_mode="atr"),
        risk=RiskSettings(max_open_positions=2, max_orders_per_minute=2, confidence_gate=0.6),
    ),
    "pct_stops_gross_cap": BacktestConfig(
        risk=RiskSettings(stop_mode="pct", max_gross_exposure=0.3)
    ),
}


def random_walk(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0.0, 0.0005, n))  # gaps
    wick = np.abs(rng.normal(0.0, 0.001, n)) * close
    ts = pd.date_range("2025-01-01", periods=n, freq="5min", tz="UTC")
    return pd.DataFrame(
        {
            "ts": ts.astype("datetime64[ns, UTC]"),
            "open": open_,
            "high": np.maximum(open_, close) + wick,
            "low": np.minimum(open_, close) - wick,
            "close": close,
        }
    )


def random_signals(bars: pd.DataFrame, ticker: str, seed: int, every: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = bars.iloc[::every]
    n = len(rows)
    return pd.DataFrame(
        {
            "ts": rows["ts"].to_numpy(),
            "ticker": ticker,
            "signal": rng.choice(np.array(["BUY", "SELL", "HOLD"]), n),
            "confidence": rng.uniform(0.5, 1.0, n),
        }
    ).astype({"ts": "datetime64[ns, UTC]"})


def multi_ticker(n: int) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Three tickers on different grids (one every bar, one every third, one with signals on
    every second bar), all on one account."""
    bars, sigs = {}, []
    for k, sym in enumerate(SYMBOLS):
        frame = random_walk(n, seed=10 + k)
        if k == 1:
            frame = frame.iloc[::3].reset_index(drop=True)
        bars[sym] = frame
        sigs.append(random_signals(frame, sym, seed=20 + k, every=2 if k == 2 else 1))
    return bars, pd.concat(sigs, ignore_index=True)


def digest(frames: list[pd.DataFrame]) -> str:
    """sha256 over the exact values (float bits included) of the frames."""
    h = hashlib.sha256()
    for frame in frames:
        h.update(",".join(frame.columns).encode())
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()
