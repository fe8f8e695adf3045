"""Is a DACC or a Sharpe ratio better than luck?

- Binomial tests (scipy): DACC vs 50%, and the model's hits vs the best baseline's rate on
  the same bars (a one-sided test of the model's hit count against the baseline's DACC).
- Deflated Sharpe Ratio (Bailey & Lopez de Prado, 2014): the probability that the true
  Sharpe of the chosen configuration is above the best Sharpe expected from ``n_trials``
  unskilled configurations, given the non-normality of its returns.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

EULER_GAMMA = 0.5772156649015329


def binomial_vs(hits: int, n: int, p0: float) -> float:
    """One-sided p-value that a hit rate of ``hits/n`` comes from a rate <= ``p0``."""
    if n <= 0:
        return float("nan")
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"p0={p0}: must be in (0, 1)")
    return float(stats.binomtest(int(hits), int(n), p0, alternative="greater").pvalue)


def dacc_standard_error(dacc: float, n: int) -> float:
    return float(math.sqrt(max(dacc * (1 - dacc), 1e-12) / n)) if n > 0 else float("nan")


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """E[max Sharpe] of ``n_trials`` skill-less strategies (False Strategy Theorem)."""
    if n_trials < 2:
        return 0.0
    z = stats.norm.ppf
    return float(
        math.sqrt(max(sharpe_variance, 0.0))
        * ((1 - EULER_GAMMA) * z(1 - 1 / n_trials) + EULER_GAMMA * z(1 - 1 / (n_trials * math.e)))
    )


def probabilistic_sharpe(returns: np.ndarray, benchmark_sr: float = 0.0) -> float:
    """PSR: P(true per-period Sharpe > benchmark) given skew and kurtosis of ``returns``."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = r.size
    if n < 3 or r.std(ddof=1) == 0:
        return float("nan")
    sr = r.mean() / r.std(ddof=1)
    skew = float(stats.skew(r))
    kurt = float(stats.kurtosis(r, fisher=False))
    denom = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    if denom <= 0:
        return float("nan")
    return float(stats.norm.cdf((sr - benchmark_sr) * math.sqrt(n - 1) / math.sqrt(denom)))


def deflated_sharpe(returns: np.ndarray, trial_sharpes: list[float]) -> dict[str, float]:
    """DSR of ``returns`` (the selected configuration) given the per-period Sharpe ratios of
    every configuration tried (including the selected one)."""
    trials = np.asarray([s for s in trial_sharpes if np.isfinite(s)], dtype=np.float64)
    var = float(trials.var(ddof=1)) if trials.size > 1 else 0.0
    sr0 = expected_max_sharpe(int(trials.size), var)
    return {
        "dsr": probabilistic_sharpe(returns, sr0),
        "sr0_per_period": sr0,
        "n_trials": int(trials.size),
    }


def per_period_sharpe(returns: np.ndarray) -> float:
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2 or r.std(ddof=1) == 0:
        return 0.0
    return float(r.mean() / r.std(ddof=1))
