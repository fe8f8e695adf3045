"""A documented rule strategy from prices alone: EMA crossover, confidence from its strength.

It exists so the pipeline can run a risk-checked backtest before any model is trained, and as a
baseline the model must beat. On every bar ``t`` (after warm-up), using closes up to ``t`` only:

    spread[t]     = (EMA_fast(close)[t] - EMA_slow(close)[t]) / ATR14[t]
    signal[t]     = BUY if spread > 0, SELL if spread < 0, HOLD if spread == 0
    confidence[t] = 0.5 + 0.5 * tanh(|spread[t]| / scale)

So EMAs ``scale`` ATRs apart (default 2) give confidence ~0.88; a fresh, thin crossover sits
near 0.5 and is held back by the risk engine's confidence gate. Warm-up bars (before the slow
EMA has ``slow`` bars and ATR exists) get no signal row at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.broker.fill_model import wilder_atr


@dataclass(frozen=True, slots=True)
class EmaCrossRule:
    fast: int = 12
    slow: int = 48
    scale: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ValueError(
                f"EmaCrossRule fast={self.fast}, slow={self.slow}: need 1 <= fast < slow"
            )
        if not self.scale > 0:
            raise ValueError(f"EmaCrossRule.scale={self.scale!r}: must be > 0")

    def signals(self, ticker: str, bars: pd.DataFrame) -> pd.DataFrame:
        """Signal rows ``ts, ticker, signal, confidence`` for one ticker's bars (causal)."""
        close = bars["close"].astype(np.float64)
        fast = close.ewm(span=self.fast, adjust=False).mean().to_numpy()
        slow = close.ewm(span=self.slow, adjust=False).mean().to_numpy()
        atr = wilder_atr(
            bars["high"].to_numpy(np.float64), bars["low"].to_numpy(np.float64), close.to_numpy()
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = (fast - slow) / atr
        ready = np.isfinite(spread) & (np.arange(len(close)) >= self.slow - 1)
        spread = spread[ready]
        words = np.where(spread > 0, "BUY", np.where(spread < 0, "SELL", "HOLD"))
        return pd.DataFrame(
            {
                "ts": bars["ts"].astype("datetime64[ns, UTC]").to_numpy()[ready],
                "ticker": ticker,
                "signal": words,
                "confidence": 0.5 + 0.5 * np.tanh(np.abs(spread) / self.scale),
            }
        ).astype({"ts": "datetime64[ns, UTC]"})


def rule_signals(
    bars: Mapping[str, pd.DataFrame], rule: EmaCrossRule | None = None
) -> pd.DataFrame:
    """Signals of every ticker, sorted by (ts, ticker)."""
    rule = rule or EmaCrossRule()
    frames = [rule.signals(sym, frame) for sym, frame in bars.items()]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["ts"])
    return out.sort_values(["ts", "ticker"], kind="stable").reset_index(drop=True)
