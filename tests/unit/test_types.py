"""Domain types refuse bad values at construction, naming the field and the value."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.types import (
    Bar,
    FlowPoint,
    InvalidField,
    MacroPoint,
    NewsItem,
    Order,
    OrderType,
    Position,
    Probabilities,
    Side,
    Signal,
    SignalAction,
    from_ns,
    to_ns,
)
from tests.builders import T0, bar


def test_valid_bar_round_trips_time() -> None:
    b = bar(i=3)
    assert b.ts == T0 + timedelta(minutes=15)
    assert from_ns(b.ts_ns) == b.ts
    assert b.close_time - b.ts == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("open", math.nan, "nan"),
        ("close", math.inf, "nan"),
        ("low", 0.0, "nonpositive"),
        ("high", -1.0, "nonpositive"),
        ("volume", -5.0, "negative_volume"),
    ],
)
def test_bar_refuses_bad_numbers(field: str, value: float, reason: str) -> None:
    with pytest.raises(InvalidField) as err:
        bar(**{field: value})
    assert err.value.field == field
    assert err.value.reason == reason
    assert f"Bar.{field}=" in str(err.value)


def test_bar_refuses_high_below_body_and_low_above_body() -> None:
    with pytest.raises(InvalidField, match=r"Bar.high=100.5") as err:
        bar(open=100.0, close=101.0, high=100.5, low=99.0)
    assert err.value.reason == "high_low"
    with pytest.raises(InvalidField, match=r"Bar.low=101.5"):
        bar(open=101.0, close=102.0, high=103.0, low=101.5)


def test_bar_refuses_naive_and_non_utc_timestamps() -> None:
    with pytest.raises(InvalidField, match="naive") as err:
        Bar("X", datetime(2025, 1, 1), 1, 1, 1, 1, 0)  # noqa: DTZ001
    assert err.value.reason == "bad_timestamp"
    with pytest.raises(InvalidField, match="not UTC"):
        Bar("X", datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=3))), 1, 1, 1, 1, 0)


def test_bar_is_frozen_and_slotted() -> None:
    b = bar()
    with pytest.raises(AttributeError):
        b.close = 1.0  # type: ignore[misc]
    assert not hasattr(b, "__dict__")


def test_to_ns_is_exact() -> None:
    ts = datetime(2025, 1, 1, 0, 5, tzinfo=UTC)
    assert to_ns(ts) == 1_735_689_900_000_000_000


def test_signal_and_probabilities_validate() -> None:
    p = Probabilities(0.7, 0.2, 0.1)
    s = Signal("BTCUSDT", T0, SignalAction.BUY, 0.7, p, "v1")
    assert s.probs is p
    with pytest.raises(InvalidField, match="confidence"):
        Signal("BTCUSDT", T0, SignalAction.BUY, 1.2)
    with pytest.raises(InvalidField, match="sum"):
        Probabilities(0.7, 0.7, 0.1)


def test_order_requires_prices_for_its_type() -> None:
    with pytest.raises(InvalidField, match="limit_price"):
        Order("id1", "AAPL", Side.BUY, 1.0, T0, type=OrderType.LIMIT)
    with pytest.raises(InvalidField, match="qty"):
        Order("id1", "AAPL", Side.BUY, 0.0, T0)
    o = Order("id1", "AAPL", Side.SELL, 2.0, T0, stop_loss=110.0, take_profit=90.0)
    assert o.side.sign == -1


def test_position_pnl_is_signed() -> None:
    short = Position("AAPL", -2.0, 100.0, T0)
    assert short.side is Side.SELL
    assert short.unrealized_pnl(90.0) == pytest.approx(20.0)


def test_news_item_needs_text_and_utc() -> None:
    item = NewsItem("n1", T0, "wire", "Apple beats estimates", symbols=("AAPL",))
    assert item.text == "Apple beats estimates"
    with pytest.raises(InvalidField, match="title"):
        NewsItem("n2", T0, "wire", "")


def test_side_points_cannot_be_public_before_their_period() -> None:
    later = T0 + timedelta(days=1)
    assert MacroPoint("fear_greed_crypto", T0, later, 40.0).value == 40.0
    with pytest.raises(InvalidField, match="published_at") as err:
        MacroPoint("fear_greed_crypto", later, T0, 40.0)
    assert err.value.reason == "published_before_ts"
    with pytest.raises(InvalidField, match="published_before_ts|published_at"):
        FlowPoint("BTCUSDT", "exchange_net_flow", later, T0, 1.0)
