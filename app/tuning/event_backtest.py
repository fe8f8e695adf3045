"""The model's test predictions through the event-driven backtest (app/backtest/engine.py).

Where the vectorized strategy in metrics.py is a quick, unit-notional reading, this runs the
signals the way the live system would trade them: the risk engine's confidence gate, ATR stops
and take-profits, sizing and limits, next-open fills with the shared fill model, and the daily
drawdown halt. One run per fold over that fold's test bars (plus a short lead-in so the ATR is
warm); pooled figures chain the folds' bar returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from app.config import CostSettings, RiskSettings
from app.labels import DOWN, UP
from app.models.dataset import WindowSet
from app.tuning.metrics import BARS_PER_YEAR, performance
from app.types import AssetClass

LEAD_IN_BARS = 50  # bars before the first test bar, without signals, to warm the ATR
KEEP = (
    "sharpe",
    "max_drawdown",
    "total_return",
    "n_trades",
    "win_rate",
    "exposure",
    "turnover",
    "fees_paid",
    "halted_bars",
)


def signals_frame(windows: WindowSet, ends: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """One signal per test bar: the top class (UP -> BUY, DOWN -> SELL, FLAT -> HOLD) and its
    calibrated probability as the confidence."""
    top = probs.argmax(axis=1)
    action = np.where(top == UP, "BUY", np.where(top == DOWN, "SELL", "HOLD"))
    symbols = np.asarray(windows.symbols, dtype=object)
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(windows.ts[ends], utc=True).astype("datetime64[ns, UTC]"),
            "ticker": symbols[windows.ticker[ends]],
            "signal": action,
            "confidence": probs.max(axis=1),
        }
    )


def _ns(column: pd.Series) -> np.ndarray:
    return column.astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").astype(np.int64)


def fold_backtest(
    bars: Mapping[str, pd.DataFrame],
    windows: WindowSet,
    ends: np.ndarray,
    probs: np.ndarray,
    asset_class: AssetClass,
    risk: RiskSettings,
    costs: CostSettings,
) -> tuple[dict[str, Any], np.ndarray]:
    """(metrics, per-bar returns of the account) of one fold's test block."""
    from app.backtest.engine import BacktestConfig, run_backtest
    from app.backtest.metrics import bar_returns

    signals = signals_frame(windows, ends, probs)
    lo_ns, hi_ns = int(windows.ts[ends].min()), int(windows.ts[ends].max())
    sliced = {}
    for sym in signals["ticker"].unique():
        frame = bars[sym]
        ts_ns = _ns(frame["ts"])
        first = max(int(np.searchsorted(ts_ns, lo_ns)) - LEAD_IN_BARS, 0)
        last = int(np.searchsorted(ts_ns, hi_ns, side="right")) + 2  # exits fill after the end
        sliced[sym] = frame.iloc[first:last]
    config = BacktestConfig(risk=risk, costs=costs, calendar=asset_class)
    result = run_backtest(sliced, signals, {s: asset_class for s in sliced}, config)
    metrics = result.metrics()
    # Only the test block counts: the lead-in bars (ATR warm-up, no signals) would otherwise be
    # pooled as flat returns, and overlap the previous fold's test block.
    equity = result.equity
    in_test = _ns(equity["ts"]) >= lo_ns
    returns = bar_returns(equity["equity"].to_numpy()[in_test], result.initial_equity)
    return {k: metrics.get(k) for k in KEEP}, returns


def pooled_backtest(
    fold_metrics: list[dict[str, Any]], fold_returns: list[np.ndarray], asset_class: AssetClass
) -> dict[str, Any]:
    """Chain the folds: Sharpe/drawdown/return of the concatenated account returns."""
    rets = np.concatenate(fold_returns) if fold_returns else np.zeros(0)
    out = performance(rets, BARS_PER_YEAR[asset_class])
    out.pop("n_periods", None)
    out["n_trades"] = int(sum(m.get("n_trades") or 0 for m in fold_metrics))
    out["fees_paid"] = float(sum(m.get("fees_paid") or 0.0 for m in fold_metrics))
    out["halted_bars"] = int(sum(m.get("halted_bars") or 0 for m in fold_metrics))
    return out
