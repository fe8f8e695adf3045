"""The oracle: exact probabilities, calibration on a large run, and a DACC around 0.6."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from app.config import LabelSettings
from app.labels import DOWN, FLAT, UP, make_labels
from app.sim.config import SimConfig
from app.sim.market import SimulatedMarket
from app.sim.oracle import oracle_probabilities
from app.sim.result import SimulationResult


@pytest.fixture(scope="module")
def big() -> SimulationResult:
    """40 days of the default universe: ~28,000 crypto bars, enough for calibration bins."""
    return SimulatedMarket(SimConfig(seed=2024, days=40)).run()


def test_probabilities_sum_to_one_and_are_symmetric() -> None:
    mu = np.array([-2e-3, -1e-4, 0.0, 5e-4, 3e-3])
    sigma = np.full(5, 1e-3)
    theta = np.full(5, 2e-4)
    up, down, flat = oracle_probabilities(mu, sigma, theta)
    np.testing.assert_allclose(up + down + flat, 1.0, atol=1e-12)
    up2, down2, _ = oracle_probabilities(-mu, sigma, theta)
    np.testing.assert_allclose(up, down2, atol=1e-15)
    np.testing.assert_allclose(down, up2, atol=1e-15)
    assert np.all(np.diff(up) > 0) and np.all(np.diff(down) < 0)
    _, _, flat0 = oracle_probabilities(mu, sigma, np.zeros(5))
    np.testing.assert_allclose(flat0, 0.0, atol=1e-12)


def test_normal_branch_matches_the_normal_cdf() -> None:
    up, down, flat = oracle_probabilities(
        np.array([1.0]), np.array([2.0]), np.array([0.5]), df=None
    )
    assert up[0] == pytest.approx(stats.norm.sf(-0.25))  # P(1 + 2e > 0.5)
    assert down[0] == pytest.approx(stats.norm.cdf(-0.75))
    assert flat[0] == pytest.approx(1 - up[0] - down[0])


def test_probabilities_match_monte_carlo_of_the_generator_noise() -> None:
    rng = np.random.default_rng(0)
    df = 5.0
    eps = rng.standard_t(df, 400_000) / np.sqrt(df / (df - 2))
    mu, sigma, theta = 3e-4, 1e-3, 2.5e-4
    r = mu + sigma * eps
    up, down, flat = oracle_probabilities(np.array([mu]), np.array([sigma]), np.array([theta]), df)
    assert np.mean(r > theta) == pytest.approx(up[0], abs=0.003)
    assert np.mean(r < -theta) == pytest.approx(down[0], abs=0.003)
    assert np.mean(np.abs(r) <= theta) == pytest.approx(flat[0], abs=0.003)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="sigma"):
        oracle_probabilities(np.zeros(2), np.array([1.0, 0.0]), np.zeros(2))
    with pytest.raises(ValueError, match="theta"):
        oracle_probabilities(np.zeros(1), np.ones(1), np.array([-1.0]))


def test_oracle_columns_recompute_for_the_same_threshold(big: SimulationResult) -> None:
    o = big.oracle["BTCUSDT"]
    df = big.manifest.oracle.df
    up, down, flat = oracle_probabilities(o["mu"], o["sigma"], o["theta"], df=df)
    np.testing.assert_array_equal(up, o["p_up"].to_numpy())
    np.testing.assert_array_equal(down, o["p_down"].to_numpy())
    # and its theta is the label threshold the models use
    _, theta, _ = make_labels(big.bars["BTCUSDT"]["close"].to_numpy(), LabelSettings())
    np.testing.assert_array_equal(theta, o["theta"].to_numpy())


def _calibration_gaps(result: SimulationResult, symbols: list[str], bins: int = 8) -> list[float]:
    """|mean predicted - realized frequency| per probability bin, for each class."""
    horizon = result.manifest.horizon
    gaps = []
    for cls, col in ((UP, "p_up"), (DOWN, "p_down"), (FLAT, "p_flat")):
        p, hit = [], []
        for sym in symbols:
            settings = result.manifest.labels
            assert settings.horizon == horizon
            _, _, y = make_labels(result.bars[sym]["close"].to_numpy(), settings)
            known = y >= 0
            p.append(result.oracle[sym][col].to_numpy()[known])
            hit.append((y[known] == cls).astype(float))
        pp, hh = np.concatenate(p), np.concatenate(hit)
        edges = np.quantile(pp, np.linspace(0, 1, bins + 1))
        which = np.clip(np.searchsorted(edges, pp, side="right") - 1, 0, bins - 1)
        for b in range(bins):
            sel = which == b
            if sel.sum() >= 500:
                gaps.append(abs(pp[sel].mean() - hh[sel].mean()))
    return gaps


def test_oracle_is_calibrated(big: SimulationResult) -> None:
    gaps = _calibration_gaps(big, ["BTCUSDT", "ETHUSDT"])
    assert len(gaps) == 24
    # ~3,500 bars per bin: a binomial sd of ~0.008; 0.03 is about 3.5 sd
    assert max(gaps) < 0.03, gaps
    # the check has power: an oracle that assumes Normal noise, or overstates the drift, fails it
    for df, mu_scale in ((None, 1.0), (5.0, 1.6)):
        wrong = {}
        for sym, o in big.oracle.items():
            o2 = o.copy()
            o2["p_up"], o2["p_down"], o2["p_flat"] = oracle_probabilities(
                o["mu"] * mu_scale, o["sigma"], o["theta"], df=df
            )
            wrong[sym] = o2
        bad = _calibration_gaps(dataclasses.replace(big, oracle=wrong), ["BTCUSDT", "ETHUSDT"])
        assert max(bad) > 0.05, (df, mu_scale, max(bad))


def test_oracle_dacc_is_modest(big: SimulationResult) -> None:
    for sym in big.bars:
        assert 0.55 <= big.oracle_dacc(sym) <= 0.68, (sym, big.oracle_dacc(sym))
    assert big.manifest.oracle_dacc == {s: round(big.oracle_dacc(s), 4) for s in big.bars}


def test_longer_horizon_oracle_is_approximately_calibrated() -> None:
    cfg = SimConfig.for_symbols(["BTCUSDT"], seed=99, days=40, labels=LabelSettings(horizon=3))
    res = SimulatedMarket(cfg).run()
    assert res.manifest.to_dict()["oracle"] == {
        "df": 7.0,
        "exact": False,
        "note": "p_* = oracle_probabilities(mu, sigma, theta, df=oracle.df)",
    }
    assert not res.oracle["BTCUSDT"].isna().any().any()
    assert 0.55 <= res.oracle_dacc("BTCUSDT") <= 0.68
    gaps = _calibration_gaps(res, ["BTCUSDT"], bins=5)
    assert max(gaps) < 0.05, gaps
