"""The oracle: class probabilities of the forward return given the planted drift and vol.

The simulator writes ``mu`` and ``sigma`` of the forward T-bar log return per bar
(``<SYM>_oracle.csv``); :func:`oracle_probabilities` turns them into ``P(UP), P(DOWN),
P(FLAT)`` for any label threshold, with the manifest's ``oracle.df``
(:class:`app.sim.manifest.OracleInfo`). The simulation folder is read by
:func:`app.sim.files.load_simulation`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from app.sim.config import T_DF


def oracle_probabilities(
    mu: np.ndarray, sigma: np.ndarray, theta: np.ndarray, df: float | None = T_DF
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``P(r > theta), P(r < -theta), P(|r| <= theta)`` for ``r = mu + sigma * e``.

    ``e`` is Student-t with ``df`` degrees of freedom scaled to unit variance (the simulator's
    eps; exact for horizon 1), or standard Normal when ``df`` is None. For other horizons pass
    the manifest's ``oracle.df`` (a kurtosis-matched approximation).
    """
    mu, sigma, theta = np.broadcast_arrays(
        np.asarray(mu, np.float64), np.asarray(sigma, np.float64), np.asarray(theta, np.float64)
    )
    if np.any(~(sigma > 0)):
        raise ValueError("sigma: must be > 0 everywhere")
    if np.any(~(theta >= 0)):
        raise ValueError("theta: must be >= 0 everywhere")
    if df is None or math.isinf(df):
        dist = stats.norm
        scale = 1.0
    else:
        if df <= 2:
            raise ValueError(f"df={df!r}: must be > 2 for a unit-variance Student-t")
        dist = stats.t(df)
        scale = math.sqrt(df / (df - 2.0))  # std of t(df); e = t / scale
    hi = (theta - mu) / sigma * scale
    lo = (-theta - mu) / sigma * scale
    p_up = dist.sf(hi)
    p_down = dist.cdf(lo)
    p_flat = np.clip(1.0 - p_up - p_down, 0.0, 1.0)
    return p_up, p_down, p_flat
