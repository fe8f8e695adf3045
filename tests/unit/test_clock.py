"""The injected clock: wall time live, data time in a replay (monotonic, UTC only)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.clock import Clock, ClockWentBackwards, ReplayClock, WallClock
from app.types import BAR_INTERVAL, InvalidField
from tests.builders import T0, bar


def test_wall_clock_is_utc_and_current() -> None:
    clock = WallClock()
    before = datetime.now(UTC)
    now = clock.now()
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)
    assert isinstance(clock, Clock) and isinstance(ReplayClock(T0), Clock)


def test_replay_clock_moves_to_each_bar_close() -> None:
    clock = ReplayClock(T0)
    assert clock.now() == T0
    assert clock.on_bar(bar(i=0)) == T0 + BAR_INTERVAL
    assert clock.now() == T0 + BAR_INTERVAL
    clock.on_bar(bar("ETHUSDT", i=0))  # a second ticker closing the same bar: no-op
    assert clock.now() == T0 + BAR_INTERVAL
    clock.on_bar(bar(i=3))  # a gap in the data is fine: time moves forward
    assert clock.now() == T0 + 4 * BAR_INTERVAL


def test_replay_clock_refuses_to_go_backwards() -> None:
    clock = ReplayClock(T0)
    clock.on_bar(bar(i=5))
    with pytest.raises(ClockWentBackwards, match="before the clock's current time") as err:
        clock.on_bar(bar(i=4))
    assert err.value.field == "ts" and err.value.reason == "clock_backwards"
    assert clock.now() == T0 + 6 * BAR_INTERVAL  # unchanged by the refused move


def test_replay_clock_rejects_naive_and_non_utc_times() -> None:
    with pytest.raises(InvalidField, match="naive"):
        ReplayClock(datetime(2025, 1, 1))
    clock = ReplayClock(T0)
    with pytest.raises(InvalidField, match="not UTC"):
        clock.advance_to(datetime(2025, 1, 2, tzinfo=timezone(timedelta(hours=1))))


def test_replay_clock_stays_monotonic_under_concurrent_advances() -> None:
    clock = ReplayClock(T0)
    errors: list[Exception] = []

    def advance(offset: int) -> None:
        for i in range(offset, 400, 4):
            try:
                clock.advance_to(T0 + i * BAR_INTERVAL)
            except ClockWentBackwards as exc:
                errors.append(exc)

    threads = [threading.Thread(target=advance, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == T0 + 399 * BAR_INTERVAL
    assert all(e.value < clock.now() for e in errors)  # only stale moves were refused
