"""Small numeric kernels shared by the batch and the incremental engine.

Sharing them is what keeps the two engines on the same arithmetic: the batch engine applies
them over whole arrays, the incremental engine over its ring buffers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from app.types import BAR_NS


def zscore_last(values: Sequence[float]) -> float:
    """z-score of the last value against all of ``values`` (population std, two-pass).

    0.0 when fewer than two values or when they are all equal: a side-input feature that
    has nothing to compare against is neutral, never NaN.
    """
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    var = sum([(x - mean) * (x - mean) for x in values]) / n
    if var <= 0.0:
        return 0.0
    return (values[-1] - mean) / math.sqrt(var)


def event_zscores(values: np.ndarray, window: int) -> np.ndarray:
    """``zscore_last`` of every prefix window ``values[max(0, j-window+1) .. j]``.

    Event series (daily flows, option prints) are short, so a plain loop over them is cheap.
    """
    out = np.zeros(len(values))
    as_list = values.tolist()
    for j in range(len(as_list)):
        out[j] = zscore_last(as_list[max(0, j - window + 1) : j + 1])
    return out


def deviation_last(values: Sequence[float]) -> float:
    """The last value minus the mean of ``values`` (0.0 = as usual)."""
    return values[-1] - sum(values) / len(values) if values else 0.0


def event_deviations(values: np.ndarray, window: int) -> np.ndarray:
    """``deviation_last`` of every prefix window ``values[max(0, j-window+1) .. j]``."""
    out = np.zeros(len(values))
    as_list = values.tolist()
    for j in range(len(as_list)):
        out[j] = deviation_last(as_list[max(0, j - window + 1) : j + 1])
    return out


def age_in_bars(close_ns: int, published_ns: int | None, cap: float) -> float:
    """Bars (fractional) since ``published_ns`` at the close ``close_ns``, capped; cap if never."""
    if published_ns is None:
        return cap
    return min(cap, (close_ns - published_ns) / BAR_NS)
