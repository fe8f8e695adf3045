"""Technical indicators, vectorized over a whole series (the batch side of the parity contract).

Recursive indicators reproduce TA-Lib's exact seeding, because models trained here are compared
with TA-Lib-based tooling and the incremental engine must reproduce the very same numbers:
- EMA(n): seeded at bar n-1 with the simple mean of the first n values, then
  ``ema += (x - ema) * 2/(n+1)``.
- MACD(12, 26, 9): *both* EMAs are seeded at bar slow-1, the fast one with the mean of the
  ``fast`` values ending there (not at bar fast-1); the signal EMA is seeded at bar
  slow-1+signal-1 with the mean of the first ``signal`` MACD values.
- RSI and ATR use Wilder smoothing ``avg = (avg*(n-1) + x)/n`` seeded with the plain mean of the
  first n gains/losses (RSI: bars 1..n) or true ranges (ATR: bars 1..n); true range needs the
  previous close, so bar 0 has none. RSI is 0 when average gain + loss is exactly 0.
- STOCH(14, 3, 3) with SMA slowing; fast %K is 0 when the 14-bar range is 0.
EMA, RSI, ATR and MACD are computed by TA-Lib itself (C speed), and the incremental engine
repeats TA-Lib's update arithmetic (they agree to a few ulps). Rolling windows are
exact two-pass statistics, one vectorized pass per window offset (no running-sum drift; TA-Lib's
own running sums are why its Bollinger sigma is not used).
"""

from __future__ import annotations

import numpy as np
import talib

from app.features.spec import FeatureSpec
from app.kernels import rolling_mean_std, window_max, window_min, window_sums


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def ema(x: np.ndarray, period: int) -> np.ndarray:
    """TA-Lib's EMA, seeded at bar period-1 with the mean of the first ``period`` values."""
    return talib.EMA(np.ascontiguousarray(x, dtype=np.float64), period)


def rsi(close: np.ndarray, period: int) -> np.ndarray:
    """TA-Lib's RSI (run by TA-Lib; the incremental engine repeats its Wilder arithmetic)."""
    return talib.RSI(np.ascontiguousarray(close, dtype=np.float64), period)


def macd(close: np.ndarray, fast: int, slow: int, signal: int) -> tuple[np.ndarray, ...]:
    """(macd line, signal, histogram) as TA-Lib's MACD, with the line from bar slow-1 on.

    TA-Lib withholds the line until its signal exists (bar slow+signal-2); those first
    ``signal-1`` values are recomputed here with TA-Lib's arithmetic (both EMAs seeded at bar
    slow-1, the fast one with the mean of the ``fast`` closes ending there).
    """
    close = np.ascontiguousarray(close, dtype=np.float64)
    n = len(close)
    if n < slow:
        return _nan(n), _nan(n), _nan(n)
    if fast == slow:  # TA-Lib's MACD needs fast < slow; two identical EMAs differ by 0
        line, sig = _nan(n), _nan(n)
        line[slow - 1 :] = 0.0
        sig[slow - 1 :] = ema(line[slow - 1 :], signal)
        return line, sig, line - sig
    line, sig, hist = talib.MACD(close, fast, slow, signal)
    ks, kf = 2.0 / (slow + 1), 2.0 / (fast + 1)
    e_slow = sum(close[:slow].tolist()) / slow
    e_fast = sum(close[slow - fast : slow].tolist()) / fast
    line[slow - 1] = e_fast - e_slow
    for i in range(slow, min(n, slow + signal - 2)):
        e_slow = (close[i] - e_slow) * ks + e_slow
        e_fast = (close[i] - e_fast) * kf + e_fast
        line[i] = e_fast - e_slow
    return line, sig, hist


def sma(x: np.ndarray, period: int) -> np.ndarray:
    """Simple mean over ``period`` values, summed oldest first (NaN inputs propagate)."""
    out = _nan(len(x))
    if len(x) >= period:
        out[period - 1 :] = window_sum(x, period) / period
    return out


def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    out = _nan(len(x))
    if len(x) >= window:
        out[window - 1 :] = window_max(np.ascontiguousarray(x, dtype=np.float64), window)
    return out


def rolling_min(x: np.ndarray, window: int) -> np.ndarray:
    out = _nan(len(x))
    if len(x) >= window:
        out[window - 1 :] = window_min(np.ascontiguousarray(x, dtype=np.float64), window)
    return out


def stoch(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, k: int, slow_k: int, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """TA-Lib STOCH with SMA slowing: (slow %K, slow %D)."""
    hh = rolling_max(high, k)
    ll = rolling_min(low, k)
    diff = (hh - ll) / 100.0
    with np.errstate(invalid="ignore", divide="ignore"):
        fast_k = np.where(diff != 0.0, (close - ll) / diff, 0.0)
    fast_k[np.isnan(diff)] = np.nan
    slow = sma(fast_k, slow_k)
    return slow, sma(slow, d)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    prev = np.concatenate([[np.nan], close[:-1]])
    tr = np.maximum(np.maximum(high - low, np.abs(high - prev)), np.abs(low - prev))
    tr[:1] = np.nan
    return tr


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """TA-Lib's ATR (run by TA-Lib; the incremental engine repeats its Wilder arithmetic)."""
    return talib.ATR(*(np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close)),
                     period)  # fmt: skip


def window_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sums of every full window of ``x`` (length n-window+1), added oldest first.

    numpy's own reductions sum pairwise; adding in this order keeps the batch engine on the
    incremental engine's exact arithmetic (parity to the last bit, not just to 1e-9).
    """
    return window_sums(np.ascontiguousarray(x, dtype=np.float64), window)


def bollinger(close: np.ndarray, period: int, k: float) -> tuple[np.ndarray, ...]:
    """(upper, middle, lower) bands: SMA ± k population standard deviations."""
    middle, std = rolling_mean_std(close, period)
    return middle + k * std, middle, middle - k * std


def zscore(x: np.ndarray, window: int, start: int = 0) -> np.ndarray:
    """(x - window mean) / window std over full windows; 0 where the window is constant."""
    mean, std = rolling_mean_std(x, window, start)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(std > 0.0, (x - mean) / std, 0.0)
    out[np.isnan(std)] = np.nan
    return out


def obv_change(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Signed volume: the change of On-Balance Volume at each bar (NaN at bar 0)."""
    out = np.sign(np.diff(close, prepend=np.nan)) * volume
    out[:1] = np.nan
    return out


def vpt_change(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """The change of Volume Price Trend: volume * relative price change (NaN at bar 0)."""
    prev = np.concatenate([[np.nan], close[:-1]])
    return volume * ((close - prev) / prev)


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Raw On-Balance Volume as TA-Lib: starts at volume[0]."""
    change = obv_change(close, volume)
    change[:1] = volume[:1]
    return np.cumsum(change)


def log_return(close: np.ndarray, lag: int) -> np.ndarray:
    out = _nan(len(close))
    if len(close) > lag:
        out[lag:] = np.log(close[lag:] / close[:-lag])
    return out


def realized_vol(close: np.ndarray, window: int) -> np.ndarray:
    """sqrt(mean of squared 1-bar log returns over ``window`` bars): per-bar realized vol."""
    r = log_return(close, 1)
    out = _nan(len(close))
    if len(close) > window:
        out[window:] = np.sqrt(window_sum(r[1:] * r[1:], window) / window)
    return out


def technical_features(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    spec: FeatureSpec,
) -> dict[str, np.ndarray]:
    """Every technical column of ``spec`` (name -> float64 array), NaN during warm-up."""
    del open_  # part of the bar; no current indicator reads it
    out: dict[str, np.ndarray] = {}
    for lag in spec.return_lags:
        out[f"ret_{lag}"] = log_return(close, lag)
    out[f"rsi_{spec.rsi_period}"] = rsi(close, spec.rsi_period)
    out["macd"], out["macd_signal"], out["macd_hist"] = macd(
        close, spec.macd_fast, spec.macd_slow, spec.macd_signal
    )
    out["stoch_k"], out["stoch_d"] = stoch(
        high, low, close, spec.stoch_k, spec.stoch_slow_k, spec.stoch_d
    )
    atr_values = atr(high, low, close, spec.atr_period)
    out[f"atr_{spec.atr_period}"] = atr_values
    out["atr_pct"] = atr_values / close
    upper, middle, lower = bollinger(close, spec.bb_period, spec.bb_k)
    out[f"bb_width_{spec.bb_period}"] = (upper - lower) / middle
    for period in spec.ema_periods:
        out[f"ema_dist_{period}"] = close / ema(close, period) - 1.0
    out["obv_z"] = zscore(obv_change(close, volume), spec.z_window, start=1)
    out["vpt_z"] = zscore(vpt_change(close, volume), spec.z_window, start=1)
    out[f"rvol_{spec.rvol_window}"] = realized_vol(close, spec.rvol_window)
    out["volume_z"] = zscore(np.log1p(volume), spec.z_window)
    return out
