"""The per-regime / disagreement breakdown on hand-built calls whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from app.tuning.disagreement import PooledCalls, compare, markdown


def _calls() -> PooledCalls:
    # 12 directional bars, 4 per volatility level; hours 0..11. "a" is right on the volatile
    # third only; "b" calls UP everywhere; the market goes up on the even bars.
    n = 12
    went_up = np.arange(n) % 2 == 0
    r = np.where(went_up, 0.001, -0.001)
    theta = np.repeat([1e-4, 2e-4, 3e-4], 4)
    a_up = np.where(theta == 3e-4, went_up, ~went_up)
    return PooledCalls(
        up={"a": a_up, "b": np.ones(n, dtype=bool)}, r=r, theta=theta, hour=np.arange(n)
    )


def test_breakdown_counts_what_each_predictor_got_right() -> None:
    c = compare(_calls(), "a", "b")
    assert c["overall"]["a"] == {
        "n": 12,
        "dacc": pytest.approx(4 / 12, abs=1e-4),
        "se": pytest.approx(0.1361, abs=1e-4),
    }
    assert c["overall"]["b"]["dacc"] == 0.5
    terciles = c["volatility_terciles"]
    assert [terciles[k]["a"]["dacc"] for k in ("calm", "middle", "volatile")] == [0.0, 0.0, 1.0]
    assert terciles["volatile"]["theta_bps_max"] == 3.0
    assert c["hour_utc"]["00-04"]["a"]["n"] == 4 and c["hour_utc"]["12-16"]["a"]["n"] == 0
    # a and b differ on 6 bars; on a directional bar exactly one of two opposite calls is right
    assert c["disagree_share"] == 0.5
    w = c["when_they_disagree"]
    assert w["a"]["dacc"] + w["b"]["dacc"] == pytest.approx(1.0)
    assert "they disagree (50.0%)" in markdown(c)


def test_bars_without_a_direction_do_not_count() -> None:
    calls = _calls()
    r = calls.r.copy()
    r[:3] = [0.0, np.nan, 0.0]
    c = compare(PooledCalls(up=calls.up, r=r, theta=calls.theta, hour=calls.hour), "a", "b")
    assert c["overall"]["a"]["n"] == 9


def test_unknown_predictor_is_named() -> None:
    with pytest.raises(KeyError, match="predictor='lightgbm'"):
        compare(_calls(), "a", "lightgbm")
