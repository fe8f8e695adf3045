"""Labels: one definition of r, theta, classes and DACC (DESIGN.md, Labels and metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from app.config import LabelSettings
from app.labels import (
    DOWN,
    FLAT,
    NO_LABEL,
    UP,
    classify,
    dacc,
    forward_log_return,
    label_threshold,
    make_labels,
)


def _prices(n: int = 2000, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vol = np.where(np.arange(n) < n // 2, 0.001, 0.004)  # a regime shift halfway
    return 100.0 * np.exp(np.cumsum(rng.normal(0, vol)))


def test_class_codes_follow_probability_order() -> None:
    assert (UP, DOWN, FLAT) == (0, 1, 2)


@pytest.mark.parametrize("horizon", [1, 3])
def test_forward_log_return_definition(horizon: int) -> None:
    close = np.array([100.0, 101.0, 99.0, 102.0, 103.0])
    r = forward_log_return(close, horizon)
    assert np.all(np.isnan(r[-horizon:]))
    expected = np.log(close[horizon:] / close[:-horizon])
    np.testing.assert_allclose(r[:-horizon], expected)


def test_forward_log_return_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="horizon"):
        forward_log_return(np.ones(5), 0)
    with pytest.raises(ValueError, match="close"):
        forward_log_return(np.array([1.0, -2.0, 3.0]), 1)


def _brute_theta(r: np.ndarray, h: int, bps: float, k: float, w: int) -> np.ndarray:
    out = np.full(r.size, bps * 1e-4)
    for t in range(r.size):
        lo, hi = t - h - w + 1, t - h
        if lo >= 0:
            out[t] = max(bps * 1e-4, k * np.std(r[lo : hi + 1]))
    return out


@pytest.mark.parametrize("horizon", [1, 4])
def test_threshold_matches_the_written_definition(horizon: int) -> None:
    r = forward_log_return(_prices(), horizon)
    got = label_threshold(r, horizon, theta_bps=2.0, theta_k=0.5, sigma_window=50)
    want = _brute_theta(r, horizon, 2.0, 0.5, 50)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    # the volatility part really moves theta after the regime shift
    assert got[-1] > 2e-4 * 2


@pytest.mark.parametrize("horizon", [1, 3])
def test_threshold_uses_only_returns_known_at_t(horizon: int) -> None:
    close = _prices()
    r = forward_log_return(close, horizon)
    theta = label_threshold(r, horizon, 1.0, 0.5, 40)
    t = 1200
    # returns not yet realized at close of t: r[t-T+1 ..] involve close[t+1 ..]
    perturbed = r.copy()
    perturbed[t - horizon + 1 :] *= 7.0
    theta_p = label_threshold(perturbed, horizon, 1.0, 0.5, 40)
    np.testing.assert_array_equal(theta_p[: t + 1], theta[: t + 1])
    # and the newest known return r[t-T] does matter
    perturbed2 = r.copy()
    perturbed2[t - horizon] *= 50.0
    assert label_threshold(perturbed2, horizon, 1.0, 0.5, 40)[t] != theta[t]


def test_threshold_short_history_uses_the_floor() -> None:
    r = forward_log_return(_prices(100), 1)
    theta = label_threshold(r, 1, 3.0, 10.0, 60)
    # first full window r[0..59] is known at t = T + w - 1 = 60
    assert np.all(theta[:60] == 3e-4)
    assert np.all(theta[60:] >= 3e-4)
    assert theta[60] > 3e-4


def test_threshold_rejects_bad_settings() -> None:
    r = np.zeros(10)
    with pytest.raises(ValueError, match="theta_bps"):
        label_threshold(r, 1, -1.0, 0.1, 5)
    with pytest.raises(ValueError, match="sigma_window"):
        label_threshold(r, 1, 1.0, 0.1, 1)


def test_classify_and_make_labels() -> None:
    r = np.array([0.002, -0.002, 0.0001, -0.0001, np.nan])
    y = classify(r, np.full(5, 0.001))
    assert y.tolist() == [UP, DOWN, FLAT, FLAT, NO_LABEL]

    settings = LabelSettings(horizon=2, theta_bps=2.0, theta_k=0.25, sigma_window=20)
    close = _prices(300)
    r, theta, y = make_labels(close, settings)
    assert y[-2:].tolist() == [NO_LABEL, NO_LABEL]
    known = y != NO_LABEL
    assert np.array_equal(y[known] == UP, r[known] > theta[known])
    assert np.array_equal(y[known] == DOWN, r[known] < -theta[known])
    assert {UP, DOWN, FLAT} <= set(y[known].tolist())


def test_dacc_counts_only_nonzero_finite_returns() -> None:
    p_up = np.array([0.6, 0.2, 0.9, 0.9, 0.1])
    p_down = np.array([0.3, 0.7, 0.05, 0.05, 0.8])
    r = np.array([0.01, -0.01, 0.0, np.nan, 0.02])
    # scored bars: 0 (right), 1 (right), 4 (wrong: called DOWN, went up)
    assert dacc(p_up, p_down, r) == pytest.approx(2 / 3)


def test_dacc_cannot_be_raised_by_abstaining() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(0, 1, 1000)
    p_up = np.where(r > 0, 0.6, 0.3)  # a perfect caller...
    p_down = np.where(r > 0, 0.3, 0.6)
    assert dacc(p_up, p_down, r) == 1.0
    # ...that "abstains" (ties up/down) on the half it finds hard gets no credit for them:
    hard = np.arange(1000) % 2 == 0
    p_up2, p_down2 = p_up.copy(), p_down.copy()
    p_up2[hard] = p_down2[hard] = 0.1
    expected = 0.5 + 0.5 * np.mean(r[hard] < 0)  # ties are DOWN calls
    assert dacc(p_up2, p_down2, r) == pytest.approx(expected)
    assert dacc(p_up2, p_down2, r) < 1.0


def test_dacc_edge_cases() -> None:
    assert np.isnan(dacc(np.ones(3), np.zeros(3), np.zeros(3)))
    with pytest.raises(ValueError, match="shapes"):
        dacc(np.ones(3), np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="p_up"):
        dacc(np.array([np.nan]), np.array([0.2]), np.array([0.1]))
