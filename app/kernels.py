"""Compiled (numba) window loops for the batch engine, in the incremental engine's arithmetic.

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
