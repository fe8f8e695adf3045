"""What a side-input source gave (domain objects + rejected rows by reason), and its store frames.

Every news / macro / flow adapter returns a :class:`SideBatch`; the ingest command turns it into
the store's frames with :func:`news_frame`, :func:`macro_frame` and :func:`flow_frame`
(columns of ``app.store.base.TABLES``, times as ``datetime64[ns, UTC]``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

import pandas as pd

from app.schema.tables import TABLES
from app.types import FlowPoint, InvalidField, MacroPoint, NewsItem

T = TypeVar("T", NewsItem, MacroPoint, FlowPoint)


class BadRow(ValueError):
    """A row that cannot become a domain object; ``reason`` is the counter key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class SideBatch(Generic[T]):
    """Items of one input (a URL, a file), the rows read and the rows rejected by reason."""

    source: str
    items: list[T] = field(default_factory=list)
    rows_read: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)  # inputs that do not exist (a holiday file)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def add(self, build: Callable[[], T | Iterable[T]]) -> None:
        """Count one wire row and keep what ``build`` makes of it, or count why it failed.

        ``build`` may return one item or several (a wide CSV row gives one point per metric).
        """
        self.rows_read += 1
        try:
            made = build()
        except BadRow as bad:
            self.rejected[bad.reason] += 1
            return
        except InvalidField as bad:
            self.rejected[bad.reason] += 1
            return
        if isinstance(made, NewsItem | MacroPoint | FlowPoint):
            self.items.append(made)  # type: ignore[arg-type]
        else:
            self.items.extend(made)

    def extend(self, other: SideBatch[T]) -> None:
        """Fold another page / file of the same source into this batch."""
        self.items.extend(other.items)
        self.rows_read += other.rows_read
        self.rejected.update(other.rejected)
        self.missing.extend(other.missing)


def utc_column(values: Sequence[datetime]) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True)).astype("datetime64[ns, UTC]")


def news_frame(
    items: Sequence[NewsItem], symbols_of: Callable[[NewsItem], Sequence[str]] | None = None
) -> pd.DataFrame:
    """The ``news`` table frame; ``ts`` is the publication time, ``symbols`` ``|``-joined.

    ``symbols_of`` (e.g. the universe tagger) lists the symbols to store for an item; the
    item's own symbols are kept after them.
    """
    rows = {c: [] for c in TABLES["news"] if c != "ts"}
    for item in items:
        tagged = tuple(symbols_of(item)) if symbols_of else ()
        rows["id"].append(item.id)
        rows["source"].append(item.source)
        rows["title"].append(item.title)
        rows["body"].append(item.body)
        rows["symbols"].append("|".join(dict.fromkeys((*tagged, *item.symbols))))
        rows["url"].append(item.url)
        rows["topic"].append(item.topic)
    frame = pd.DataFrame(rows, dtype="object")
    frame.insert(1, "ts", utc_column([i.published_at for i in items]))
    return frame.loc[:, list(TABLES["news"])]


def macro_frame(points: Sequence[MacroPoint]) -> pd.DataFrame:
    """The ``macro`` table frame: ``symbol`` is the series name."""
    return pd.DataFrame(
        {
            "symbol": pd.Series([p.name for p in points], dtype="object"),
            "ts": utc_column([p.ts for p in points]),
            "published_at": utc_column([p.published_at for p in points]),
            "value": pd.Series([p.value for p in points], dtype="float64"),
        }
    )


def flow_frame(points: Sequence[FlowPoint]) -> pd.DataFrame:
    """The ``flow`` table frame."""
    return pd.DataFrame(
        {
            "symbol": pd.Series([p.symbol for p in points], dtype="object"),
            "ts": utc_column([p.ts for p in points]),
            "kind": pd.Series([p.kind for p in points], dtype="object"),
            "published_at": utc_column([p.published_at for p in points]),
            "value": pd.Series([p.value for p in points], dtype="float64"),
        }
    )


def parse_iso_utc(text: str, *, assume_utc: bool = False) -> datetime:
    """ISO-8601 text -> aware UTC datetime; a bad value is a BadRow with its reason."""
    text = (text or "").strip()
    if not text:
        raise BadRow("missing_ts")
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRow("bad_ts") from None
    if ts.tzinfo is None:
        if not assume_utc:
            raise BadRow("naive_ts")
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)
