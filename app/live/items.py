"""What flows out of a source (bars and side items) and where a source resumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.types import Bar, FlowPoint, MacroPoint, NewsItem

SideItem = NewsItem | MacroPoint | FlowPoint
FeedItem = Bar | NewsItem | MacroPoint | FlowPoint


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where the sources of one feed continue after a restart.

    ``bars_after``: per symbol, the ts (int ns, bar open time) of the last bar the worker
    processed (None: from the start); a source yields only bars after it. ``side_seen``: how
    many side items of this feed's stream the worker has taken (a replay skips that many; a
    live side source resumes from its own cursor).
    """

    bars_after: Mapping[str, int | None] = field(default_factory=dict)
    side_seen: int = 0

    def wants_bar(self, bar: Bar) -> bool:
        last = self.bars_after.get(bar.symbol)
        return last is None or bar.ts_ns > last
