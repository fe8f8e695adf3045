"""Side frames to the items the incremental engine receives, delivered bar by bar.

What a live feed would hand ``IncrementalFeatures``: each item at the first bar whose close is
at or after its publication. Rows that make no valid item are counted by
``<table>.<field>.<reason>`` in the caller's Counter, never dropped silently. For replays and the
batch = incremental parity tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import TypeVar

import numpy as np
import pandas as pd

from app.features.rolling import BAR_NS
from app.features.side_inputs import ScoredNews, SideInputs
from app.types import FlowPoint, InvalidField, MacroPoint, to_ns

T = TypeVar("T")


def _number(row: Mapping[str, object], column: str, table: str) -> float:
    """``row[column]`` as a float; anything that is not a number is an InvalidField."""
    value = row[column]
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidField(table, column, value, "unparseable", "not a number") from None


def _items(
    frame: pd.DataFrame | None, table: str, build: Callable[[dict], T], rejected: Counter[str]
) -> tuple[T, ...]:
    """``build`` on every row; a row it refuses is left out and counted in ``rejected`` as
    ``<table>.<field>.<reason>`` (e.g. ``news.score.out_of_range``)."""
    out = []
    for row in _records(frame):
        try:
            out.append(build(row))
        except InvalidField as exc:
            rejected[f"{table}.{exc.field}.{exc.reason}"] += 1
    return tuple(out)


def _scored_news(row: dict) -> ScoredNews:
    topics = {c[len("topic_") :]: _number(row, c, "news") for c in row if c.startswith("topic_")}
    symbol, news_id = str(row.get("symbol", "")), str(row.get("news_id", ""))
    return ScoredNews(row["published_at"], symbol, news_id, _number(row, "score", "news"), topics)


def _macro_point(row: dict) -> MacroPoint:
    return MacroPoint(row["symbol"], row.get("ts", row["published_at"]), row["published_at"],
                      _number(row, "value", "macro"))  # fmt: skip


def _flow_point(row: dict) -> FlowPoint:
    return FlowPoint(row["symbol"], row["kind"], row.get("ts", row["published_at"]),
                     row["published_at"], _number(row, "value", "flow"))  # fmt: skip


def scored_news_items(news: pd.DataFrame | None, rejected: Counter[str]) -> tuple[ScoredNews, ...]:
    """Rows of a scored-news frame as items for the incremental engine (bad rows counted)."""
    return _items(news, "news", _scored_news, rejected)


def macro_items(macro: pd.DataFrame | None, rejected: Counter[str]) -> tuple[MacroPoint, ...]:
    """Rows of a macro frame (``symbol`` = series name) as MacroPoints (bad rows counted)."""
    return _items(macro, "macro", _macro_point, rejected)


def flow_items(flow: pd.DataFrame | None, rejected: Counter[str]) -> tuple[FlowPoint, ...]:
    """Rows of a flow frame as FlowPoints (bad rows counted)."""
    return _items(flow, "flow", _flow_point, rejected)


def side_inputs_per_bar(
    bar_ts: pd.Series | np.ndarray,
    *,
    news: pd.DataFrame | None = None,
    macro: pd.DataFrame | None = None,
    flow: pd.DataFrame | None = None,
    rejected: Counter[str],
) -> list[SideInputs]:
    """Split side frames into per-bar deliveries: each item goes to the first bar whose close
    is at or after its publication (what a live feed would deliver). Items published after the
    last close are left out; rows that make no valid item are counted in ``rejected``. For
    replays and the parity tests.
    """
    ts = np.asarray(pd.Series(bar_ts).astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]"))
    close_ns = ts.astype(np.int64) + BAR_NS
    buckets: list[dict[str, list]] = [{"news": [], "macro": [], "flow": []} for _ in close_ns]
    deliveries = (
        ("news", scored_news_items(news, rejected)),
        ("macro", macro_items(macro, rejected)),
        ("flow", flow_items(flow, rejected)),
    )
    for modality, items in deliveries:
        for item in items:
            k = int(np.searchsorted(close_ns, to_ns(item.published_at), side="left"))
            if k < len(close_ns):
                buckets[k][modality].append(item)
    return [SideInputs(tuple(b["news"]), tuple(b["macro"]), tuple(b["flow"])) for b in buckets]


def _records(frame: pd.DataFrame | None) -> list[dict]:
    if frame is None or len(frame) == 0:
        return []
    out = []
    for row in frame.to_dict("records"):
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                row[key] = value.to_pydatetime()
        out.append(row)
    return out
