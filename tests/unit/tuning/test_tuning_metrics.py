"""Metric definitions on hand-checked numbers: strategy fills and costs, selective DACC, DSR."""

from __future__ import annotations

import numpy as np
import pytest

from app.tuning.metrics import (
    classification_metrics,
    performance,
    positions_from_probs,
    strategy_returns,
)
from app.tuning.significance import (
    binomial_vs,
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
)


def test_strategy_fills_at_next_open_and_pays_costs_per_unit_turnover():
    pos = np.array([1.0, 1.0, -1.0, 0.0])
    open1 = np.array([100.0, 101.0, 102.0, 100.0])  # open of t+1
    open2 = np.array([101.0, 102.0, 100.0, 99.0])  # open of t+2
    rets = strategy_returns(pos, open1, open2, cost_bps=10.0)
    expected = [
        0.01 - 1 * 1e-3,  # enter long: turnover 1
        1 / 101,  # hold
        -(100 / 102 - 1) - 2 * 1e-3,  # flip to short: turnover 2
        0.0 - 1 * 1e-3,  # close: turnover 1 (position 0 earns nothing)
    ]
    np.testing.assert_allclose(rets, expected)


def test_gate_selective_dacc_and_coverage():
    probs = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.1, 0.75, 0.15], [0.1, 0.1, 0.8]])
    r = np.array([0.01, -0.01, 0.02, 0.0])
    y = np.array([0, 1, 0, 2])
    m = classification_metrics(probs, y, r, gate=0.7)
    assert m["dacc"] == pytest.approx(1 / 3)  # 3 bars with r != 0; only the first call is right
    assert m["coverage"] == pytest.approx(2 / 3)  # bars 0 and 2 pass the gate
    assert m["selective_dacc"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.5)
    np.testing.assert_array_equal(positions_from_probs(probs, 0.7), [1, 0, -1, 0])


def test_performance_drawdown_and_total_return():
    perf = performance(np.array([0.1, -0.5, 0.2]), bars_per_year=252)
    assert perf["total_return"] == pytest.approx(1.1 * 0.5 * 1.2 - 1)
    assert perf["max_drawdown"] == pytest.approx(0.5)


def test_significance_tests_and_deflated_sharpe():
    assert binomial_vs(60, 100, 0.5) < 0.05 < binomial_vs(55, 100, 0.5)
    assert expected_max_sharpe(1, 1.0) == 0.0
    assert expected_max_sharpe(100, 0.01) > expected_max_sharpe(10, 0.01) > 0
    rng = np.random.default_rng(0)
    rets = rng.normal(0.1, 1.0, 2000)  # true per-period Sharpe 0.1 (4.5 standard errors)
    psr = probabilistic_sharpe(rets)
    assert psr > 0.95
    many = deflated_sharpe(rets, list(rng.normal(0.0, 0.05, 200)))
    assert many["n_trials"] == 200 and many["dsr"] < psr  # trying many configs costs confidence
