"""Labels and the direction metric: one definition used by the simulator, features and models.

DESIGN.md, "Labels and metrics": the forward log return over ``T`` bars is classed UP if it
exceeds a threshold ``theta``, DOWN if it is below ``-theta``, FLAT otherwise. ``theta`` mixes a
fixed floor in basis points with a multiple of the recent volatility of T-bar returns, and that
volatility is measured only on returns already *realized* at bar ``t`` (no look-ahead).

Class codes follow the order of the probability vector ``[P(UP), P(DOWN), P(FLAT)]``.
NumPy only, so every layer can import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # settings are only a parameter type here; keeps the import graph flat
    from app.config import LabelSettings

UP, DOWN, FLAT = 0, 1, 2
CLASS_NAMES: tuple[str, str, str] = ("UP", "DOWN", "FLAT")
NO_LABEL = -1


def _as_1d_float(name: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    return arr


def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon={horizon!r}: must be an integer >= 1")
    return int(horizon)


def forward_log_return(close: np.ndarray, horizon: int) -> np.ndarray:
    """``r[t] = log(close[t+T] / close[t])``; NaN for the last ``T`` bars (future unknown)."""
    close = _as_1d_float("close", close)
    horizon = _check_horizon(horizon)
    if np.any(close[np.isfinite(close)] <= 0):
        bad = close[np.isfinite(close) & (close <= 0)][0]
        raise ValueError(f"close={bad!r}: prices must be > 0 for log returns")
    r = np.full(close.shape, np.nan)
    if close.size > horizon:
        r[:-horizon] = np.log(close[horizon:] / close[:-horizon])
    return r


def _trailing_std(x: np.ndarray, window: int) -> np.ndarray:
    """Population std of ``x[i-window+1 .. i]`` for each i; NaN where the window is short or
    holds a non-finite value. O(n) through cumulative sums, centred on the first finite value
    so that ``out[i]`` depends on ``x[: i + 1]`` only, bit for bit (causality tests compare
    exactly)."""
    n = x.size
    out = np.full(n, np.nan)
    if n < window:
        return out
    finite = np.isfinite(x)
    centre = float(x[finite][0]) if finite.any() else 0.0
    z = np.where(finite, x - centre, 0.0)
    c1 = np.concatenate([[0.0], np.cumsum(z)])
    c2 = np.concatenate([[0.0], np.cumsum(z * z)])
    cnt = np.concatenate([[0], np.cumsum(finite.astype(np.int64))])
    s1 = c1[window:] - c1[:-window]
    s2 = c2[window:] - c2[:-window]
    k = cnt[window:] - cnt[:-window]
    mean = s1 / window
    var = np.maximum(s2 / window - mean * mean, 0.0)
    std = np.sqrt(var)
    std[k < window] = np.nan
    out[window - 1 :] = std
    return out


def label_threshold(
    r: np.ndarray, horizon: int, theta_bps: float, theta_k: float, sigma_window: int
) -> np.ndarray:
    """``theta[t] = max(theta_bps*1e-4, theta_k * std(r[t-T-w+1 .. t-T]))``.

    ``r[t-T] = log(close[t]/close[t-T])`` is the newest T-bar return known at the close of bar
    ``t``, so the window uses the past only. Where fewer than ``w`` known returns exist (or the
    window holds a NaN) the floor ``theta_bps`` alone applies.
    """
    r = _as_1d_float("r", r)
    horizon = _check_horizon(horizon)
    if not np.isfinite(theta_bps) or theta_bps < 0:
        raise ValueError(f"theta_bps={theta_bps!r}: must be a finite number >= 0")
    if not np.isfinite(theta_k) or theta_k < 0:
        raise ValueError(f"theta_k={theta_k!r}: must be a finite number >= 0")
    if isinstance(sigma_window, bool) or not isinstance(sigma_window, int | np.integer):
        raise ValueError(f"sigma_window={sigma_window!r}: must be an integer >= 2")
    if sigma_window < 2:
        raise ValueError(f"sigma_window={sigma_window!r}: must be an integer >= 2")
    floor = theta_bps / 1e4  # bps -> fraction, correctly rounded (3 bps == 3e-4 exactly)
    theta = np.full(r.shape, floor)
    if theta_k == 0 or r.size <= horizon:
        return theta
    sigma_at_end = _trailing_std(r, int(sigma_window))  # std of r[i-w+1 .. i]
    sigma = np.full(r.shape, np.nan)
    sigma[horizon:] = sigma_at_end[:-horizon]  # at t use the window ending at t-T
    vol_theta = theta_k * sigma
    has = np.isfinite(vol_theta)
    theta[has] = np.maximum(floor, vol_theta[has])
    return theta


def classify(r: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """UP if ``r > theta``, DOWN if ``r < -theta``, else FLAT; ``NO_LABEL`` (-1) where r is NaN."""
    r = _as_1d_float("r", r)
    theta = _as_1d_float("theta", theta)
    if r.shape != theta.shape:
        raise ValueError(f"theta: shape {theta.shape} differs from r {r.shape}")
    y = np.full(r.shape, FLAT, dtype=np.int64)
    y[r > theta] = UP
    y[r < -theta] = DOWN
    y[~np.isfinite(r)] = NO_LABEL
    return y


def make_labels(
    close: np.ndarray, settings: LabelSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward return ``r``, threshold ``theta`` and class ``y`` for every bar of ``close``."""
    r = forward_log_return(close, settings.horizon)
    theta = label_threshold(
        r, settings.horizon, settings.theta_bps, settings.theta_k, settings.sigma_window
    )
    return r, theta, classify(r, theta)


def dacc(p_up: np.ndarray, p_down: np.ndarray, r: np.ndarray) -> float:
    """Directional accuracy: on bars with a finite ``r != 0``, the call is UP if
    ``p_up > p_down`` else DOWN; the share called right.

    Every such bar counts (a tie is a DOWN call), so abstaining cannot raise the score.
    NaN when no bar qualifies. A NaN probability on a counted bar is an error, not a guess.
    """
    p_up = _as_1d_float("p_up", p_up)
    p_down = _as_1d_float("p_down", p_down)
    r = _as_1d_float("r", r)
    if not p_up.shape == p_down.shape == r.shape:
        raise ValueError(f"shapes differ: p_up {p_up.shape}, p_down {p_down.shape}, r {r.shape}")
    scored = np.isfinite(r) & (r != 0)
    if not scored.any():
        return float("nan")
    pu, pd_, rr = p_up[scored], p_down[scored], r[scored]
    for name, p in (("p_up", pu), ("p_down", pd_)):
        if not np.all(np.isfinite(p)):
            raise ValueError(f"{name}: NaN/inf probability on a bar with a realized return")
    called_up = pu > pd_
    right = np.where(called_up, rr > 0, rr < 0)
    return float(right.mean())
