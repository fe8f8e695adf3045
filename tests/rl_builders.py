"""Builders for the RL tests: hand-made bars with signals on chosen bars, and oracle signals
from a simulation folder (the simulator's ``<SYMBOL>_oracle.csv`` has p_up, p_down, p_flat:
docs/SIMULATOR.md), which stand in for slow walk-forward signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from app.rl.series import MarketSeries, signals_from_probs
from app.types import AssetClass

T0 = pd.Timestamp("2025-01-01T00:00:00Z")


def flat_bars(n: int, price: float = 100.0, half_range: float = 0.1) -> pd.DataFrame:
    """``n`` 5-minute bars at a constant price (open = close), high/low +- ``half_range``:
    Wilder ATR(14) is exactly ``2 * half_range`` from bar 13 on."""
    ts = pd.date_range(T0, periods=n, freq="5min", tz="UTC").astype("datetime64[ns, UTC]")
    close = np.full(n, price)
    return pd.DataFrame(
        {
            "ts": ts,
            "open": close,
            "high": close + half_range,
            "low": close - half_range,
            "close": close,
        }
    )


def set_bar(bars: pd.DataFrame, j: int, **values: float) -> None:
    for k, v in values.items():
        bars.loc[j, k] = v


def series_with(
    bars: pd.DataFrame,
    signals: dict[int, tuple[float, float, float]],
    symbol: str = "BTCUSDT",
    asset_class: AssetClass = AssetClass.CRYPTO,
) -> MarketSeries:
    """A series whose bar ``j`` carries the probabilities ``signals[j]`` (p_up, p_down, p_flat);
    the signal is the most likely class and the confidence its probability."""
    n = len(bars)
    probs = np.full((n, 3), np.nan)
    signal = np.full(n, "", dtype=object)
    confidence = np.zeros(n)
    words = np.array(["BUY", "SELL", "HOLD"])
    for j, p in signals.items():
        probs[j] = p
        signal[j] = words[int(np.argmax(p))]
        confidence[j] = max(p)
    return MarketSeries(symbol, asset_class, bars, probs, signal.astype(str), confidence)


def oracle_signals_csv(sim_dir: Path, symbol: str, out: Path) -> Path:
    """The oracle's probabilities of a simulation folder as a signals CSV (the walk-forward's
    columns: ts,ticker,signal,confidence,p_up,p_down,p_flat)."""
    oracle = pd.read_csv(sim_dir / f"{symbol}_oracle.csv")
    signals_from_probs(oracle, symbol).to_csv(out, index=False)
    return out
