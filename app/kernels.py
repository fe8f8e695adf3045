"""Array kernels shared by features and text: compiled (numba) window loops, the exact rolling
mean and std built on them, and the decayed cumulative sum.

NumPy and numba only, so every layer may import it (the news-impact model in ``app.text`` uses
the rolling std and the decayed sum, as the feature engine does).

The window loops are in the incremental engine's arithmetic.

Each output is computed exactly as ``IncrementalFeatures`` computes it bar by bar: window sums
added oldest first, a two-pass variance around that mean, extremes that propagate NaN like
``np.maximum`` / ``np.minimum``. No fast-math, so no reassociation: the batch and incremental
engines agree to the last bit (tests/unit/features). The loops run window offset by window
offset over cache-sized blocks of outputs, so the inner loop is over independent outputs and
vectorizes. The cache lives in ``NUMBA_CACHE_DIR`` (the Makefile and tests: ``.cache/numba``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 4096  # outputs per block: the block's accumulators stay in L1/L2


@njit(cache=True)
def window_sums(x: np.ndarray, window: int) -> np.ndarray:
    """Sums of every full window of ``x`` (length n - window + 1), added oldest first."""
    m = x.shape[0] - window + 1
    out = x[:m].copy()
    for lo in range(0, m, BLOCK):
        hi = min(m, lo + BLOCK)
        acc = out[lo:hi]  # views with offsets: no index arithmetic in the inner loop
        for j in range(1, window):
            xj = x[lo + j : hi + j]
            for i in range(hi - lo):
                acc[i] += xj[i]
    return out


@njit(cache=True)
def window_mean_var(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population variance of every full window: the sum oldest first, then the
    squared deviations from that mean, oldest first (a two-pass, drift-free variance)."""
    mean = window_sums(x, window) / window
    m = mean.shape[0]
    var = np.empty(m)
    for lo in range(0, m, BLOCK):
        hi = min(m, lo + BLOCK)
        mu, acc, x0 = mean[lo:hi], var[lo:hi], x[lo:hi]
        for i in range(hi - lo):
            d = x0[i] - mu[i]
            acc[i] = d * d
        for j in range(1, window):
            xj = x[lo + j : hi + j]
            for i in range(hi - lo):
                d = xj[i] - mu[i]
                acc[i] += d * d
    return mean, var / window


@njit(cache=True)
def window_max(x: np.ndarray, window: int) -> np.ndarray:
    """Max of every full window; a NaN anywhere in the window gives NaN (as np.maximum)."""
    m = x.shape[0] - window + 1
    out = x[:m].copy()
    for j in range(1, window):
        xj = x[j : j + m]
        for i in range(m):
            b = xj[i]
            if b > out[i] or b != b:
                out[i] = b
    return out


def window_min(x: np.ndarray, window: int) -> np.ndarray:
    """Min of every full window: ``-max(-x)`` (negation is exact, NaN stays NaN)."""
    return -window_max(-x, window)


def rolling_mean_std(x: np.ndarray, window: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact two-pass mean and population std of ``x[i-window+1 .. i]`` for windows in x[start:]."""
    n = len(x)
    mean, std = np.full(n, np.nan), np.full(n, np.nan)
    if n - start < window:
        return mean, std
    m, var = window_mean_var(np.ascontiguousarray(x[start:], dtype=np.float64), window)
    mean[start + window - 1 :] = m
    std[start + window - 1 :] = np.sqrt(var)
    return mean, std


_MAX_EXPONENT = 256.0  # 2**256 ~ 1e77: far from float64 overflow


def decayed_cumulative(close_ns: np.ndarray, inflow: np.ndarray, half_life_ns: float) -> np.ndarray:
    """``D[k] = D[k-1] * 2**(-(t[k]-t[k-1])/h) + inflow[k]`` for every bar, vectorized.

    Closed form ``D[k] = 2**-L[k] * sum_{j<=k} inflow[j] * 2**L[j]`` (L = time in half-lives),
    evaluated in chunks whose exponent span stays below 2**256 so nothing overflows; the
    running value is carried across chunks. ``inflow[k]`` must already be decayed to t[k].
    """
    n = len(close_ns)
    out = np.zeros(n)
    if n == 0:
        return out
    levels = (close_ns - close_ns[0]).astype(np.float64) / half_life_ns
    carry, carry_level, start = 0.0, levels[0], 0
    while start < n:
        base = levels[start]
        end = int(np.searchsorted(levels, base + _MAX_EXPONENT, side="right"))
        end = max(end, start + 1)
        exponent = levels[start:end] - base
        seed = carry * np.exp2(-(base - carry_level))
        out[start:end] = (seed + np.cumsum(inflow[start:end] * np.exp2(exponent))) * np.exp2(
            -exponent
        )
        carry, carry_level, start = out[end - 1], levels[end - 1], end
    return out
