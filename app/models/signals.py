"""Probabilities -> signal (DESIGN.md, Signals): UP -> BUY, DOWN -> SELL, FLAT -> HOLD, and the
confidence is the calibrated probability of the chosen class. One definition for ``predict``,
the live Model deployment and anything else that turns ``predict_proba`` into signals."""

from __future__ import annotations

import numpy as np

from app.types import SignalAction

ACTIONS: tuple[SignalAction, ...] = (SignalAction.BUY, SignalAction.SELL, SignalAction.HOLD)


def signals_from_probs(probs: np.ndarray) -> tuple[list[SignalAction], np.ndarray]:
    """(N, 3) [P(UP), P(DOWN), P(FLAT)] -> actions and confidences (ties: the first class)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != 3:
        raise ValueError(f"probs: shape {probs.shape}, expected (N, 3)")
    idx = probs.argmax(axis=1)
    return [ACTIONS[i] for i in idx], probs[np.arange(len(probs)), idx]


def signal_of(probs: np.ndarray) -> tuple[SignalAction, float]:
    """One (3,) row -> (action, confidence)."""
    actions, conf = signals_from_probs(np.asarray(probs, dtype=np.float64).reshape(1, 3))
    return actions[0], float(conf[0])
