"""Number and time formatting shared by the views; None and NaN show as a dash."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd

DASH = "–"


def _finite(v: object) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def pct(v: object, digits: int = 2) -> str:
    x = _finite(v)
    return DASH if x is None else f"{x * 100:.{digits}f}%"


def num(v: object, digits: int = 2) -> str:
    x = _finite(v)
    return DASH if x is None else f"{x:,.{digits}f}"


def money(v: object) -> str:
    x = _finite(v)
    return DASH if x is None else f"{x:+,.2f}"


def age(seconds: object) -> str:
    x = _finite(seconds)
    if x is None:
        return DASH
    if x < 120:
        return f"{x:.0f} s"
    if x < 7200:
        return f"{x / 60:.1f} min"
    return f"{x / 3600:.1f} h"


def parse_ts(v: object) -> datetime | None:
    """An ISO 8601 string from the API as an aware UTC datetime."""
    if not v:
        return None
    ts = pd.Timestamp(str(v))
    if ts.tzinfo is None:
        raise ValueError(f"timestamp={v!r}: the API sends UTC offsets")
    return ts.tz_convert(UTC).to_pydatetime()


def when(v: object) -> str:
    ts = parse_ts(v)
    return DASH if ts is None else ts.strftime("%Y-%m-%d %H:%M UTC")
