"""The entry checks ``decide`` and ``check_order`` share: one pure rule each, one reason string."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.config import RiskSettings
from app.risk.limits import Limits
from app.risk.rules import open_positions_problem, price_band_problem, rate_limit_problem
from tests.unit.risk.risk_helpers import (
    NOON,
    engine,
    entry_order,
    market,
    portfolio,
    position,
    signal,
)


def limits(**overrides: object) -> Limits:
    return Limits.from_settings(RiskSettings(**overrides))


def test_price_band_rule() -> None:
    lim = limits(price_band=0.05)
    assert price_band_problem(106.0, 100.0, lim) == "price_band:6.00%>5.00%"
    assert price_band_problem(94.0, 100.0, lim) == "price_band:6.00%>5.00%"
    assert price_band_problem(104.9, 100.0, lim) is None
    assert price_band_problem(1e9, None, lim) is None  # no reference: nothing to compare


def test_rate_limit_rule() -> None:
    lim = limits(max_orders_per_minute=3)
    assert rate_limit_problem(2, lim) is None
    assert rate_limit_problem(3, lim) == "rate_limited:3>=3/min"
    assert rate_limit_problem(7, lim) == "rate_limited:7>=3/min"


def test_open_positions_rule() -> None:
    lim = limits(max_open_positions=2)
    assert open_positions_problem("C", {"A"}, lim) is None
    assert open_positions_problem("C", {"A", "B"}, lim) == "capped:max_open_positions:2>=2"
    assert open_positions_problem("A", {"A", "B"}, lim) is None  # already holds its slot
    positions = portfolio(positions=[position("A"), position("B")]).positions  # a Mapping works
    assert open_positions_problem("C", positions, lim) == "capped:max_open_positions:2>=2"


@pytest.mark.parametrize(
    ("overrides", "book", "price", "reference", "expected"),
    [
        ({}, {}, 106.0, 100.0, "price_band:6.00%>5.00%"),
        (
            {"max_open_positions": 1},
            {"positions": [position("AAPL", qty=1.0)]},
            100.0,
            None,
            "capped:max_open_positions:1>=1",
        ),
    ],
)
def test_decide_and_check_order_give_the_same_reason(
    overrides: dict, book: dict, price: float, reference: float | None, expected: str
) -> None:
    p = portfolio(**book)
    m = market("ETHUSDT", price=price, reference_price=reference)
    decided = engine(**overrides).decide(signal("ETHUSDT"), p, m)
    checked = engine(**overrides).check_order(entry_order(), m, p)
    assert decided.reasons == (expected,)
    assert checked.reasons == (expected,)


def test_rate_limit_reason_is_the_same_on_both_paths() -> None:
    e = engine(max_orders_per_minute=1)
    assert e.decide(signal("A"), portfolio(), market("A")).approved
    later = NOON + timedelta(seconds=30)
    decided = e.decide(signal("B", ts=later), portfolio(), market("B", ts=later))
    checked = e.check_order(entry_order("B", ts=later), market("B", ts=later))
    assert decided.reasons == ("rate_limited:1>=1/min",)
    assert checked.reasons == ("rate_limited:1>=1/min",)


def test_same_direction_hold_takes_numpy_quantities() -> None:
    import numpy as np

    from app.risk.engine import same_direction_hold

    # a numpy float position must read as the same direction (``is`` on np.bool_ never matched)
    assert same_direction_hold(1, np.float64(2.0)) == same_direction_hold(1, 2.0) is not None
    assert same_direction_hold(-1, np.float64(-2.0)) == same_direction_hold(-1, -2.0) is not None
    assert same_direction_hold(-1, np.float64(2.0)) is None
    assert same_direction_hold(1, np.float64(0.0)) is None
