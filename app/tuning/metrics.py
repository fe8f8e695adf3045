"""Scores of probabilistic direction forecasts, and of the strategy they imply.

Definitions (DESIGN.md, Labels and metrics):
- DACC: app.labels.dacc (every bar with r != 0 counts; a tie is a DOWN call).
- accuracy: 3-class argmax accuracy on labeled bars.
- selective DACC / coverage at the risk gate: bars whose top class is UP or DOWN with
  probability >= gate (the bars the risk layer would trade); coverage = their share of the
  DACC-eligible bars, selective DACC = directional accuracy on them.
- log loss and ECE (15 bins, top-class confidence) on labeled bars.
- Strategy (vectorized, next-bar fills): the signal of bar t (BUY/SELL when it passes the
  gate, else flat) is filled at the open of bar t+1 and held until the open of bar t+2, where
  the next decision takes over. Each change of position pays (fee + slippage) bps of notional
  per unit traded. Positions are closed at segment ends (no holding across a gap). Returns
  are simple per-bar returns of a unit-notional book; Sharpe is annualized with the asset
  class's bars per year; max drawdown is on the compounded equity curve.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.labels import DOWN, FLAT, UP, dacc
from app.models.calibration import expected_calibration_error, nll
from app.types import AssetClass

BARS_PER_YEAR: dict[AssetClass, int] = {
    AssetClass.CRYPTO: 365 * 288,
    AssetClass.STOCKS: 252 * 78,
    AssetClass.FOREX: 260 * 288,
}


def classification_metrics(
    probs: np.ndarray, y: np.ndarray, r: np.ndarray, gate: float = 0.70
) -> dict[str, float]:
    """DACC, accuracy, selective DACC/coverage at ``gate``, log loss, ECE and counts."""
    probs = np.asarray(probs, dtype=np.float64)
    labeled = y >= 0
    eligible = np.isfinite(r) & (r != 0)
    top = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    selected = eligible & (conf >= gate) & (top != FLAT)
    right = np.where(top == UP, r > 0, r < 0)
    n_elig = int(eligible.sum())
    return {
        "dacc": dacc(probs[:, UP], probs[:, DOWN], r),
        "accuracy": float((top[labeled] == y[labeled]).mean()) if labeled.any() else float("nan"),
        "selective_dacc": float(right[selected].mean()) if selected.any() else float("nan"),
        "coverage": float(selected.sum() / n_elig) if n_elig else float("nan"),
        "log_loss": nll(probs[labeled], y[labeled]) if labeled.any() else float("nan"),
        "ece": expected_calibration_error(probs[labeled], y[labeled]),
        "n_bars": int(labeled.sum()),
        "n_directional": n_elig,
        "n_selected": int(selected.sum()),
    }


def positions_from_probs(probs: np.ndarray, gate: float = 0.70) -> np.ndarray:
    """+1 for a gated BUY, -1 for a gated SELL, 0 otherwise."""
    top = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    pos = np.zeros(probs.shape[0])
    pos[(top == UP) & (conf >= gate)] = 1.0
    pos[(top == DOWN) & (conf >= gate)] = -1.0
    return pos


def strategy_returns(
    position: np.ndarray, open_next: np.ndarray, open_next2: np.ndarray, cost_bps: float
) -> np.ndarray:
    """Per-decision net return: position held from open[t+1] to open[t+2], minus costs.

    ``position`` is the target after bar t's decision, in a contiguous run of decisions
    (one ticker, one segment); the book starts and ends flat.
    """
    gross = position * (open_next2 / open_next - 1.0)
    prev = np.concatenate([[0.0], position[:-1]])
    turnover = np.abs(position - prev)
    turnover[-1] += abs(position[-1])  # close out at the end of the run
    return gross - turnover * cost_bps * 1e-4


def performance(returns: np.ndarray, bars_per_year: int) -> dict[str, float]:
    """Annualized Sharpe, max drawdown and total return of per-bar simple returns."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.size == 0:
        return {
            "sharpe": float("nan"),
            "max_drawdown": float("nan"),
            "total_return": 0.0,
            "n_periods": 0,
        }
    sd = returns.std(ddof=1) if returns.size > 1 else 0.0
    sharpe = float(returns.mean() / sd * np.sqrt(bars_per_year)) if sd > 0 else 0.0
    equity = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    return {
        "sharpe": sharpe,
        "max_drawdown": float((1.0 - equity / peak).max()),
        "total_return": float(equity[-1] - 1.0),
        "n_periods": int(returns.size),
    }


def summarize_fold_values(values: list[float]) -> dict[str, Any]:
    """Mean and standard error over folds (NaN-aware)."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return {"mean": float("nan"), "se": float("nan")}
    se = float(arr.std(ddof=1) / np.sqrt(arr.size)) if arr.size > 1 else float("nan")
    return {"mean": float(arr.mean()), "se": se}
