"""One clock abstraction for live and replay (DESIGN.md, Execution and the live loop).

Code that needs "now" asks an injected :class:`Clock`. Live, that is the wall clock; in a replay
(tests, demos, ``live --replay``) it is a :class:`ReplayClock` that the replay moves to each bar's
close time, so the same code computes the same ages, staleness and decisions on the same bars.
Stdlib and ``app.types`` only.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from app.types import Bar, InvalidField, require_utc


@runtime_checkable
class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class WallClock:
    """The machine's clock, in UTC."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "WallClock()"


class ClockWentBackwards(InvalidField):  # noqa: N818 - reads better at the call site
    """A replay asked the clock to move to an earlier instant: the data is out of order."""


class ReplayClock:
    """A clock that moves only when the data does: set to each bar's close by the replay.

    Monotonic: moving to the current instant again is a no-op (several tickers close the same
    bar), moving to an earlier one raises :class:`ClockWentBackwards`. Safe to read from other
    threads (the API reads it while the replay advances it).
    """

    __slots__ = ("_now", "_lock")

    def __init__(self, start: datetime) -> None:
        self._now = require_utc("ReplayClock", "start", start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def advance_to(self, ts: datetime) -> datetime:
        """Move to ``ts`` (>= now); return it."""
        require_utc("ReplayClock", "ts", ts)
        with self._lock:
            if ts < self._now:
                raise ClockWentBackwards(
                    "ReplayClock",
                    "ts",
                    ts,
                    "clock_backwards",
                    f"before the clock's current time {self._now.isoformat()}: "
                    "replayed bars must come in time order",
                )
            self._now = ts
        return ts

    def on_bar(self, bar: Bar) -> datetime:
        """Move to the close of ``bar`` (when the bar becomes known); return it."""
        return self.advance_to(bar.close_time)

    def __repr__(self) -> str:
        return f"ReplayClock(now={self._now.isoformat()})"
