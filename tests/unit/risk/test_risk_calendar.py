"""Trading-day boundaries: UTC midnight (crypto), New York midnight (stocks), 17:00 NY (forex)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.risk.calendar import next_trading_day_start, trading_day
from app.types import AssetClass, InvalidField

C, S, F = AssetClass.CRYPTO, AssetClass.STOCKS, AssetClass.FOREX
EPS = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ts", "asset_class", "day"),
    [
        # crypto: the UTC date
        (utc(2025, 1, 1, 23, 59, 59), C, date(2025, 1, 1)),
        (utc(2025, 1, 2, 0, 0), C, date(2025, 1, 2)),
        # stocks: New York date; winter UTC-5, summer UTC-4
        (utc(2025, 1, 2, 4, 59), S, date(2025, 1, 1)),
        (utc(2025, 1, 2, 5, 0), S, date(2025, 1, 2)),
        (utc(2025, 7, 2, 3, 59), S, date(2025, 7, 1)),
        (utc(2025, 7, 2, 4, 0), S, date(2025, 7, 2)),
        # forex: rolls at 17:00 New York = 22:00 UTC in winter, 21:00 UTC in summer
        (utc(2025, 1, 6, 21, 59), F, date(2025, 1, 6)),
        (utc(2025, 1, 6, 22, 0), F, date(2025, 1, 7)),
        (utc(2025, 7, 7, 20, 59), F, date(2025, 7, 7)),
        (utc(2025, 7, 7, 21, 0), F, date(2025, 7, 8)),
        # DST starts 2025-03-09 at 02:00 NY: that afternoon is already EDT (UTC-4)
        (utc(2025, 3, 9, 20, 59), F, date(2025, 3, 9)),
        (utc(2025, 3, 9, 21, 0), F, date(2025, 3, 10)),
        # Sunday 17:00 NY opens Monday's FX day
        (utc(2025, 1, 5, 22, 0), F, date(2025, 1, 6)),
    ],
)
def test_trading_day_per_asset_class(ts: datetime, asset_class: AssetClass, day: date) -> None:
    assert trading_day(ts, asset_class) == day


@pytest.mark.parametrize(
    ("ts", "asset_class", "start"),
    [
        (utc(2025, 1, 1, 12), C, utc(2025, 1, 2)),
        (utc(2025, 1, 1, 12), S, utc(2025, 1, 2, 5)),
        (utc(2025, 7, 1, 12), S, utc(2025, 7, 2, 4)),
        (utc(2025, 1, 6, 12), F, utc(2025, 1, 6, 22)),
        (utc(2025, 1, 6, 22, 30), F, utc(2025, 1, 7, 22)),
        (utc(2025, 11, 1, 22), F, utc(2025, 11, 2, 22)),  # DST ends 2025-11-02: 21:00 -> 22:00 UTC
    ],
)
def test_next_trading_day_start(ts: datetime, asset_class: AssetClass, start: datetime) -> None:
    assert next_trading_day_start(ts, asset_class) == start


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(InvalidField, match="naive"):
        trading_day(datetime(2025, 1, 1), AssetClass.CRYPTO)  # noqa: DTZ001


@settings(max_examples=1000, deadline=None)
@given(
    ts=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    asset_class=st.sampled_from(list(AssetClass)),
)
def test_next_start_is_exactly_the_next_boundary(ts: datetime, asset_class: AssetClass) -> None:
    """The halt lifts exactly when the trading day changes, never early, never a day late."""
    start = next_trading_day_start(ts, asset_class)
    day = trading_day(ts, asset_class)
    assert start > ts
    assert trading_day(start, asset_class) == day + timedelta(days=1)
    assert trading_day(start - EPS, asset_class) == day
