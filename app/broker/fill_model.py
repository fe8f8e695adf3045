"""How a simulated order turns into a fill: one piece of code for the backtest and the paper broker.

Conventions (DESIGN.md, Time):
- A market order decided at the close of bar ``t`` fills at the OPEN of the next bar of its symbol,
  moved against the trader by the slippage: ``price * (1 + side * s)`` where ``s`` is either
  ``slippage_bps / 1e4`` or ``slippage_atr * ATR / price`` (a fraction of the causal Wilder ATR).
- Fees are ``fee_bps / 1e4`` of the filled notional (``qty * fill price``), per asset class.
- Stop-loss and take-profit of an open position are checked inside every bar with its high and low.
  A bar that opens through a level fills at the open (a gap); when both levels lie inside one bar's
  range the stop is assumed to have hit first (the pessimistic reading of an OHLC bar).
- A triggered stop becomes a market order: it pays slippage. A take-profit is a resting limit
  order: it fills at its level (or at a better open after a gap) without slippage.

Everything here is a pure function of numbers, so the hot loop of the backtester can call it per
bar without building objects, and so vectorbt can replay the same arithmetic
(``price * (1 +/- slippage)``, ``fees`` as a fraction of the filled value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from app.config import CostSettings
from app.types import AssetClass

ATR_PERIOD: Final = 14

# Exit reasons produced inside a bar.
STOP_LOSS: Final = "stop_loss"
TAKE_PROFIT: Final = "take_profit"


@dataclass(frozen=True, slots=True)
class FillModel:
    """Costs of one asset class. ``fee_rate`` and ``slippage_rate`` are fractions, not bps."""

    fee_rate: float
    slippage_rate: float = 0.0  # fraction of price, used when slippage_atr_fraction is None
    slippage_atr_fraction: float | None = None  # when set, slippage = this x ATR (price units)

    def __post_init__(self) -> None:
        for name in ("fee_rate", "slippage_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value < 1.0):
                raise ValueError(f"FillModel.{name}={value!r}: must be a fraction in [0, 1)")
        frac = self.slippage_atr_fraction
        if frac is not None and not (math.isfinite(frac) and frac >= 0.0):
            raise ValueError(f"FillModel.slippage_atr_fraction={frac!r}: must be finite >= 0")

    @classmethod
    def from_costs(cls, costs: CostSettings, asset_class: AssetClass) -> FillModel:
        """The fill model of ``asset_class`` under ``costs`` (fee per class, one slippage rule)."""
        if asset_class not in costs.fee_bps:
            raise ValueError(f"costs.fee_bps has no entry for asset_class={asset_class.value!r}")
        fee_rate = costs.fee_bps[asset_class] * 1e-4
        if costs.slippage_mode == "atr":
            return cls(fee_rate=fee_rate, slippage_atr_fraction=costs.slippage_atr)
        return cls(fee_rate=fee_rate, slippage_rate=costs.slippage_bps * 1e-4)

    def slippage_fraction(self, price: float, atr: float) -> float:
        """Slippage as a fraction of ``price``.

        In ATR mode with no ATR yet (warm-up: NaN), the slippage falls back to ``slippage_rate``.
        """
        frac = self.slippage_atr_fraction
        if frac is None:
            return self.slippage_rate
        if not atr > 0.0:  # NaN or 0 during warm-up
            return self.slippage_rate
        return frac * atr / price

    def market_fill(self, side_sign: int, price: float, atr: float) -> tuple[float, float]:
        """``(fill_price, slippage_fraction)`` of a market order (``side_sign`` +1 buy, -1 sell)
        executed at reference ``price`` (the bar's open, or a triggered stop level)."""
        slip = self.slippage_fraction(price, atr)
        return price * (1.0 + side_sign * slip), slip

    def fee(self, qty: float, fill_price: float) -> float:
        """Fee on the filled notional (``qty`` unsigned)."""
        return abs(qty) * fill_price * self.fee_rate


def intrabar_exit(
    position_sign: int,
    open_: float,
    high: float,
    low: float,
    stop_loss: float,
    take_profit: float,
) -> tuple[float, str] | None:
    """Which protective level a bar hits first, and the reference price it executes at.

    ``position_sign`` is +1 for a long and -1 for a short. A missing level is NaN (every
    comparison with NaN is False, so it never triggers). Returns ``(price, reason)`` before
    slippage, or None when the bar touches neither level. Rules, long side (short mirrored):
    open <= stop -> stop at the open (gap); open >= take-profit -> take-profit at the open;
    low <= stop -> stop at its level (checked before the take-profit: stop-first); high >= take-
    profit -> take-profit at its level.
    """
    if position_sign > 0:
        if open_ <= stop_loss:
            return open_, STOP_LOSS
        if open_ >= take_profit:
            return open_, TAKE_PROFIT
        if low <= stop_loss:
            return stop_loss, STOP_LOSS
        if high >= take_profit:
            return take_profit, TAKE_PROFIT
        return None
    if open_ >= stop_loss:
        return open_, STOP_LOSS
    if open_ <= take_profit:
        return open_, TAKE_PROFIT
    if high >= stop_loss:
        return stop_loss, STOP_LOSS
    if low <= take_profit:
        return take_profit, TAKE_PROFIT
    return None


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range per bar; the first bar has no previous close and gets NaN (as in TA-Lib)."""
    prev_close = np.concatenate([[np.nan], close[:-1]])
    tr = np.maximum(high - low, np.maximum(np.abs(high - prev_close), np.abs(low - prev_close)))
    tr[0] = np.nan
    return tr


def wilder_atr(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = ATR_PERIOD
) -> np.ndarray:
    """Wilder's ATR, causal: ``atr[t]`` uses bars ``0..t`` only; NaN until ``t = period``.

    Seeded with the mean true range of bars ``1..period`` and smoothed with
    ``atr[t] = (atr[t-1] * (period - 1) + tr[t]) / period``: the TA-Lib definition.
    """
    high = np.asarray(high, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    if period < 1:
        raise ValueError(f"period={period!r}: must be >= 1")
    n = len(close)
    out = np.full(n, np.nan)
    if n <= period:
        return out
    tr = true_range(high, low, close)
    from scipy.signal import lfilter  # here: scipy.signal costs ~2 s to import per process

    seed = tr[1 : period + 1].mean()
    alpha = 1.0 / period
    # y[t] = (1 - alpha) * y[t-1] + alpha * tr[t], started from the seed: a first-order IIR filter.
    rest, _ = lfilter([alpha], [1.0, -(1.0 - alpha)], tr[period + 1 :], zi=[(1.0 - alpha) * seed])
    out[period] = seed
    out[period + 1 :] = rest
    return out


class RunningATR:
    """``wilder_atr(...)[-1]`` bar by bar in O(1), bit for bit (the live loop's ATR).

    The same arithmetic in the same order: true range as ``true_range``, the seed as numpy's
    mean of the first ``period`` ranges, then ``(1 - alpha) * atr + alpha * tr``, which is what
    ``lfilter``'s first-order step computes. A test checks equality to ``wilder_atr`` on random
    bars; recomputing over the whole history made every live bar O(n).
    """

    __slots__ = ("_alpha", "_first", "_n", "_prev_close", "atr", "period")

    def __init__(self, period: int = ATR_PERIOD) -> None:
        if period < 1:
            raise ValueError(f"period={period!r}: must be >= 1")
        self.period = period
        self._alpha = 1.0 / period
        self._n = 0
        self._prev_close = math.nan
        self._first: list[float] = []  # true ranges of bars 1..period, until the seed
        self.atr = math.nan

    def update(self, high: float, low: float, close: float) -> float:
        """Add one bar; returns the ATR through it (NaN until bar ``period``)."""
        n, pc = self._n, self._prev_close
        self._n, self._prev_close = n + 1, close
        if n == 0:
            return self.atr
        tr = max(high - low, max(abs(high - pc), abs(low - pc)))
        if math.isnan(high - low) or math.isnan(pc):
            tr = math.nan
        if n < self.period:
            self._first.append(tr)
        elif n == self.period:
            self._first.append(tr)
            self.atr = float(np.asarray(self._first).mean())
            self._first = []
        else:
            self.atr = (1.0 - self._alpha) * self.atr + self._alpha * tr
        return self.atr

    @classmethod
    def over(cls, highs, lows, closes, period: int = ATR_PERIOD) -> RunningATR:  # noqa: ANN001
        """The state after a history of bars (a restart)."""
        atr = cls(period)
        for h, lo, c in zip(highs, lows, closes, strict=True):
            atr.update(float(h), float(lo), float(c))
        return atr
