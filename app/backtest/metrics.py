"""Performance of an equity curve and a trade log, one definition for every report.

Per-bar simple returns of the equity curve are annualized by the asset class's bar calendar
(DESIGN.md): crypto 365x288 bars a year, stocks 252x78 (regular session), forex 260x288.
Sharpe = mean / std (ddof=1) x sqrt(bars per year), risk-free rate 0. Sortino uses the downside
deviation sqrt(mean(min(r, 0)^2)) over all bars. CAGR uses the same calendar: years = bars /
bars per year. Drawdowns are fractions below the running peak, reported as positive numbers.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pandas as pd

from app.types import AssetClass

BARS_PER_YEAR: Final[dict[AssetClass, int]] = {
    AssetClass.CRYPTO: 365 * 288,
    AssetClass.STOCKS: 252 * 78,
    AssetClass.FOREX: 260 * 288,
}


def bar_returns(equity: np.ndarray, initial_equity: float) -> np.ndarray:
    """Simple return of every bar, the first one against the initial equity."""
    equity = np.asarray(equity, dtype=np.float64)
    prev = np.concatenate([[initial_equity], equity[:-1]])
    return equity / prev - 1.0


def drawdown_curve(equity: np.ndarray) -> np.ndarray:
    """``equity / running peak - 1`` (<= 0) per bar."""
    equity = np.asarray(equity, dtype=np.float64)
    return equity / np.maximum.accumulate(equity) - 1.0


def max_drawdown_duration(equity: np.ndarray) -> int:
    """Longest run of bars spent below a previous peak (to recovery, or to the end)."""
    equity = np.asarray(equity, dtype=np.float64)
    if equity.size == 0:
        return 0
    at_peak = equity >= np.maximum.accumulate(equity)
    peak_idx = np.maximum.accumulate(np.where(at_peak, np.arange(equity.size), 0))
    return int((np.arange(equity.size) - peak_idx).max())


def sharpe(returns: np.ndarray, bars_per_year: int) -> float:
    if returns.size < 2:
        return math.nan
    sd = returns.std(ddof=1)
    return float(returns.mean() / sd * math.sqrt(bars_per_year)) if sd > 0 else math.nan


def sortino(returns: np.ndarray, bars_per_year: int) -> float:
    if returns.size < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return float(returns.mean() / downside * math.sqrt(bars_per_year)) if downside > 0 else math.nan


def cagr(initial_equity: float, final_equity: float, n_bars: int, bars_per_year: int) -> float:
    """Compound annual growth; NaN when undefined or too large for a float (tiny samples)."""
    if n_bars == 0 or final_equity <= 0:
        return math.nan
    try:
        return (final_equity / initial_equity) ** (bars_per_year / n_bars) - 1.0
    except OverflowError:
        return math.nan


def trade_stats(pnl: np.ndarray) -> dict[str, float | int | None]:
    """Win rate and profit factor of closed trades (None where undefined: no trades / no loss)."""
    pnl = np.asarray(pnl, dtype=np.float64)
    wins = pnl[pnl > 0].sum()
    losses = -pnl[pnl < 0].sum()
    return {
        "n_trades": int(pnl.size),
        "win_rate": float((pnl > 0).mean()) if pnl.size else None,
        "profit_factor": float(wins / losses) if losses > 0 else None,
        "avg_trade_pnl": float(pnl.mean()) if pnl.size else None,
    }


def compute_metrics(
    equity: np.ndarray,
    initial_equity: float,
    asset_class: AssetClass,
    *,
    trades: pd.DataFrame | None = None,
    traded_notional: float = 0.0,
    fees_paid: float = 0.0,
    exposed: np.ndarray | None = None,
) -> dict[str, float | int | None]:
    """Every headline number of a run. ``exposed`` flags bars with an open position.

    Turnover = traded notional / mean equity; exposure = share of bars with a position open.
    Trade statistics use closed trades only (``exit_reason != 'open_at_end'``).
    """
    equity = np.asarray(equity, dtype=np.float64)
    bpy = BARS_PER_YEAR[asset_class]
    final = float(equity[-1]) if equity.size else initial_equity
    rets = bar_returns(equity, initial_equity) if equity.size else np.empty(0)
    with_start = np.concatenate([[initial_equity], equity])
    dd = drawdown_curve(with_start)
    closed = np.empty(0)
    if trades is not None and len(trades):
        closed = trades.loc[trades["exit_reason"] != "open_at_end", "pnl"].to_numpy(np.float64)
    out: dict[str, float | int | None] = {
        "asset_class_calendar": asset_class.value,
        "bars": int(equity.size),
        "initial_equity": initial_equity,
        "final_equity": final,
        "total_return": final / initial_equity - 1.0,
        "cagr": cagr(initial_equity, final, int(equity.size), bpy),
        "sharpe": sharpe(rets, bpy),
        "sortino": sortino(rets, bpy),
        "max_drawdown": float(-dd.min()),
        "max_drawdown_duration_bars": max_drawdown_duration(with_start),
    }
    out.update(trade_stats(closed))
    mean_equity = float(equity.mean()) if equity.size else initial_equity
    out["turnover"] = traded_notional / mean_equity if mean_equity > 0 else math.nan
    out["fees_paid"] = fees_paid
    out["exposure"] = float(np.mean(exposed)) if exposed is not None and len(exposed) else 0.0
    return {k: _clean(v) for k, v in out.items()}


def _clean(value: object) -> object:
    """NaN/inf -> None so the JSON stays valid."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
