"""Feeds: every source's newest bar, its lag and status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ui.views.fmt import age, when

Json = dict[str, Any]

FEED_COLUMNS = ["source", "asset_class", "status", "last_bar", "lag", "limit", "symbols"]


def feeds_frame(feeds: Sequence[Json]) -> pd.DataFrame:
    rows = [
        {
            "source": f["source"],
            "asset_class": f["asset_class"],
            "status": str(f["status"]).upper(),
            "last_bar": when(f.get("last_bar_ts")),
            "lag": age(f.get("lag_s")),
            "limit": age(f.get("limit_s")),
            "symbols": ", ".join(f.get("symbols", [])),
        }
        for f in feeds
    ]
    return pd.DataFrame(rows, columns=FEED_COLUMNS)


CONTROL_COLUMNS = ["asset_class", "feed", "stopped_at"]


def control_frame(classes: Sequence[Json]) -> pd.DataFrame:
    """``/v1/feeds/control``: one row per asset class the worker feeds."""
    rows = [
        {
            "asset_class": c["asset_class"],
            "feed": str(c["state"]).upper(),
            "stopped_at": when(c.get("stopped_at")) if c.get("stopped_at") else "",
        }
        for c in classes
    ]
    return pd.DataFrame(rows, columns=CONTROL_COLUMNS)
