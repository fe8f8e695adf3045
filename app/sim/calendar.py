"""Trading calendars and intraday activity profiles for the simulated market.

Crypto trades 24x7; forex from Sunday 17:00 to Friday 17:00 New York time; US stocks in the
regular session 09:30-16:00 New York, Monday to Friday, without the main NYSE holidays.
Local times go through ``zoneinfo`` so daylight-saving shifts land where they do in reality.
Bar timestamps are open times in int64 nanoseconds UTC.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from app.types import AssetClass, to_ns

NEW_YORK = "America/New_York"
BAR_NS = 5 * 60 * 1_000_000_000
DAY_NS = 86_400 * 1_000_000_000


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th ``weekday`` (Mon=0) of a month; n = -1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + month // 12, month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(d: date) -> date:
    """NYSE rule: a Saturday holiday is observed on Friday, a Sunday one on Monday."""
    if d.weekday() == 5:
        return d - timedelta(days=1)
    if d.weekday() == 6:
        return d + timedelta(days=1)
    return d


def us_market_holidays(year: int) -> set[date]:
    """Rule-based NYSE full-day holidays (Good Friday left out: it needs the Easter date)."""
    return {
        _observed(date(year, 1, 1)),
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 6, 19)),  # Juneteenth
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }


def _grid(start: datetime, days: int) -> pd.DatetimeIndex:
    n = days * 288
    return pd.date_range(start, periods=n, freq="5min", tz="UTC").astype("datetime64[ns, UTC]")


def bar_times(asset_class: AssetClass, start: datetime, days: int) -> np.ndarray:
    """Open times (int64 ns UTC) of every 5-minute bar in ``[start, start + days)``."""
    to_ns(start)  # refuses naive / non-UTC starts
    if days < 1:
        raise ValueError(f"days={days!r}: must be >= 1")
    grid = _grid(start, days)
    local = grid.tz_convert(NEW_YORK)
    minutes = local.hour * 60 + local.minute
    weekday = local.weekday
    if asset_class is AssetClass.CRYPTO:
        keep = np.ones(len(grid), dtype=bool)
    elif asset_class is AssetClass.FOREX:
        closed = (
            (weekday == 5)
            | ((weekday == 4) & (minutes >= 17 * 60))
            | ((weekday == 6) & (minutes < 17 * 60))
        )
        keep = ~np.asarray(closed)
    elif asset_class is AssetClass.STOCKS:
        years = range(local[0].year, local[-1].year + 1)
        holidays = set().union(*(us_market_holidays(y) for y in years))
        local_days = local.tz_localize(None).to_numpy().astype("datetime64[D]")
        is_holiday = np.isin(local_days, np.array(sorted(holidays), dtype="datetime64[D]"))
        in_session = (minutes >= 9 * 60 + 30) & (minutes < 16 * 60) & (weekday < 5)
        keep = np.asarray(in_session) & ~is_holiday
    else:  # pragma: no cover - AssetClass is closed
        raise ValueError(f"asset_class={asset_class!r}: unknown")
    return grid.asi8[keep].astype(np.int64)


def gap_before(ts_ns: np.ndarray) -> np.ndarray:
    """True where a bar does not follow the previous one directly (session or weekend open)."""
    gap = np.zeros(ts_ns.size, dtype=bool)
    if ts_ns.size > 1:
        gap[1:] = np.diff(ts_ns) > BAR_NS
    return gap


def activity_profile(asset_class: AssetClass, ts_ns: np.ndarray) -> np.ndarray:
    """Relative intraday volatility of each bar (mean about 1).

    Fixed shapes (not fitted to the run), so a longer run extends a shorter one.
    Stocks: a U shape over the session (busy open and close, quiet lunch). Forex: by session
    (quiet Asia, busy London, busiest London/New York overlap). Crypto: mildly busier during
    US hours.
    """
    utc = pd.DatetimeIndex(ts_ns.astype("datetime64[ns]")).tz_localize("UTC")
    if asset_class is AssetClass.STOCKS:
        local = utc.tz_convert(NEW_YORK)
        minutes = np.asarray(local.hour * 60 + local.minute, dtype=float)
        x = (minutes - 570.0) / 390.0  # 0 at 09:30, 1 at 16:00
        prof = 0.75 + 3.2 * (x - 0.5) ** 2 + 0.6 * np.exp(-x * 390.0 / 15.0)
    elif asset_class is AssetClass.FOREX:
        hour = np.asarray(utc.hour, dtype=float)
        prof = np.select(
            [hour < 7, hour < 12, hour < 16, hour < 21],
            [0.6, 1.15, 1.5, 0.85],
            default=0.5,
        )
    else:
        hour = np.asarray(utc.hour, dtype=float)
        prof = 0.85 + 0.35 * np.exp(-0.5 * ((hour - 16.0) / 3.0) ** 2)
    return np.asarray(prof, dtype=np.float64)
