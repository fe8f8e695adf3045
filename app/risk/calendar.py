"""Trading-day boundaries per asset class.

The daily drawdown limit compares equity with the equity at the start of the *trading* day, and
a drawdown halt lasts until the next one. Where a day starts depends on the market:

- crypto trades around the clock; its day is the UTC date (rolls at 00:00 UTC);
- US stocks: the New York calendar date (rolls at 00:00 America/New_York, DST-aware);
- forex: the FX value day, which rolls at 17:00 America/New_York (the "5 pm New York close"), so
  17:00 New York on Monday already belongs to Tuesday's FX day.

Pure functions on aware UTC datetimes; no clock is read here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.types import AssetClass, require_utc

NEW_YORK = ZoneInfo("America/New_York")
FX_ROLL_NY = time(17, 0)
# Shifting New York wall time by this much maps the 17:00 roll onto midnight.
_FX_SHIFT = timedelta(hours=24) - timedelta(hours=FX_ROLL_NY.hour)


def trading_day(ts: datetime, asset_class: AssetClass) -> date:
    """The trading day ``ts`` (aware UTC) belongs to, by the asset class's calendar."""
    require_utc("trading_day", "ts", ts)
    if asset_class is AssetClass.CRYPTO:
        return ts.date()
    local = ts.astimezone(NEW_YORK).replace(tzinfo=None)
    if asset_class is AssetClass.STOCKS:
        return local.date()
    if asset_class is AssetClass.FOREX:
        return (local + _FX_SHIFT).date()
    raise ValueError(f"asset_class={asset_class!r}: expected crypto, stocks or forex")


def next_trading_day_start(ts: datetime, asset_class: AssetClass) -> datetime:
    """The UTC instant the trading day after the one holding ``ts`` begins.

    ``trading_day(next_trading_day_start(ts, c), c) == trading_day(ts, c) + 1 day`` for every
    ``ts``; this is the instant a daily-drawdown halt is lifted.
    """
    require_utc("next_trading_day_start", "ts", ts)
    if asset_class is AssetClass.CRYPTO:
        return datetime.combine(ts.date() + timedelta(days=1), time(0), tzinfo=UTC)
    local = ts.astimezone(NEW_YORK)
    if asset_class is AssetClass.STOCKS:
        start = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=NEW_YORK)
        return start.astimezone(UTC)
    if asset_class is AssetClass.FOREX:
        roll_date = local.date() if local.time() < FX_ROLL_NY else local.date() + timedelta(days=1)
        return datetime.combine(roll_date, FX_ROLL_NY, tzinfo=NEW_YORK).astimezone(UTC)
    raise ValueError(f"asset_class={asset_class!r}: expected crypto, stocks or forex")
