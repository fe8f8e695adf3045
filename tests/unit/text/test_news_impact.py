"""Fold-fitted news impact: targets, the training-window rule (no look-ahead), that it learns a
planted effect, the decayed columns, and the walk-forward hook writing only its columns."""

from __future__ import annotations

import numpy as np
import pytest

from app.features.rolling import BAR_NS
from app.text.impact import (
    HORIZON_BARS,
    IMPACT_COLUMNS,
    NewsImpactModel,
    headline_events,
    impact_columns,
)

T0 = 1_700_000_000 * 1_000_000_000 // BAR_NS * BAR_NS
MIN = 60 * 1_000_000_000


def _market(n_bars: int, n_news: int, effect: float, seed: int = 0):
    """Random-walk closes; each headline's embedding sign direction moves price by ``effect``
    sigmas over the next HORIZON_BARS bars (0 = no effect: a pure random walk)."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(n_bars, dtype=np.int64) * BAR_NS
    steps = rng.normal(0, 1e-3, n_bars)
    bars = np.sort(rng.choice(np.arange(300, n_bars - 20), n_news, replace=False))
    direction = rng.choice([-1.0, 1.0], n_news)
    emb = rng.normal(0, 1, (n_news, 16))
    emb[:, 0] = direction * 2 + rng.normal(0, 0.3, n_news)  # the text carries the direction
    for b, d in zip(bars, direction, strict=True):
        steps[b + 1 : b + 1 + HORIZON_BARS] += d * effect * 1e-3 / np.sqrt(HORIZON_BARS)
    close = 100 * np.exp(np.cumsum(steps))
    published = ts[bars] + BAR_NS - 2 * MIN  # inside bar ``b``: public at its close
    return ts, close, published, emb, bars, direction


def test_targets_are_the_normalised_move_after_the_first_close_that_knows_the_headline():
    ts, close, published, emb, bars, _ = _market(2000, 40, effect=0.0)
    ev = headline_events(ts, close, published, emb)
    assert np.array_equal(ev.bar, bars)
    j = bars[0]
    move = np.log(close[j + HORIZON_BARS]) - np.log(close[j])
    steps = np.diff(np.log(close), prepend=np.nan)
    sigma = np.std(steps[j - 287 : j + 1])  # population std of the 288 returns up to bar j
    assert ev.target[0] == pytest.approx(move / (sigma * np.sqrt(HORIZON_BARS)), rel=1e-9)
    assert ev.outcome_ts[0] == ts[j + HORIZON_BARS]


def test_a_gap_inside_the_horizon_gives_no_target():
    ts, close, published, emb, bars, _ = _market(2000, 40, effect=0.0)
    ts = ts.copy()
    ts[bars[3] + 2 :] += 12 * BAR_NS  # an hour missing two bars after headline 3
    ev = headline_events(ts, close, published, emb)
    assert np.isnan(ev.target[3]) and np.isfinite(ev.target[2])


def test_fit_uses_only_outcomes_inside_the_training_window():
    ts, close, published, emb, _, _ = _market(6000, 400, effect=1.0)
    cut = ts[3000]
    model = NewsImpactModel.fit([headline_events(ts, close, published, emb)], ts[0], cut)
    future = close.copy()
    future[3000:] *= np.exp(np.random.default_rng(9).normal(0, 0.01, 3000)).cumprod()
    again = NewsImpactModel.fit([headline_events(ts, future, published, emb)], ts[0], cut)
    assert model is not None and again is not None
    np.testing.assert_array_equal(model.coef, again.coef)  # the future cannot move the fit


def test_it_learns_a_planted_effect_and_finds_none_in_a_random_walk():
    for effect, seed in ((1.5, 1), (0.0, 2)):
        ts, close, published, emb, bars, direction = _market(12000, 800, effect, seed)
        ev = headline_events(ts, close, published, emb)
        model = NewsImpactModel.fit([ev], ts[0], ts[6000])
        later = (bars >= 6000) & np.isfinite(ev.target)
        skill = np.corrcoef(model.predict(emb[later]), ev.target[later])[0, 1]
        if effect:
            assert np.corrcoef(model.predict(emb[later]), direction[later])[0, 1] > 0.5
            assert skill > 0.3
        else:  # ~390 unseen headlines: the standard error of a zero correlation is ~0.05
            assert abs(skill) < 0.15


def test_too_few_headlines_fit_nothing_and_columns_stay_zero():
    ts, close, published, emb, _, _ = _market(2000, 20, effect=1.0)
    ev = headline_events(ts, close, published, emb)
    assert NewsImpactModel.fit([ev], ts[0], ts[-1]) is None
    assert not impact_columns(ts, ev, None).any()


def test_columns_decay_from_the_publication_bar():
    ts, close, published, emb, bars, _ = _market(2000, 60, effect=1.0)
    ev = headline_events(ts, close, published, emb)
    model = NewsImpactModel.fit([ev], ts[0], ts[-1])
    cols = impact_columns(ts, ev, model)
    assert cols.shape == (ts.size, len(IMPACT_COLUMNS))
    b = bars[0]
    first = model.predict(emb[:1])[0]
    assert not cols[:b].any()  # nothing before the first headline is public
    assert cols[b, 0] == pytest.approx(first * 2 ** (-2 / 15), rel=1e-6)  # 2 min after pub
    assert cols[b + 1, 0] == pytest.approx(first * 2 ** (-7 / 15), rel=1e-6)
    assert NewsImpactModel.from_dict(model.to_dict()).predict(emb[:3]) == pytest.approx(
        model.predict(emb[:3])
    )
