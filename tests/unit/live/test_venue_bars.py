"""VenueBars on an in-memory venue: resume after stored bars, bad rows rejected and counted,
symbols ordered by time, the venue's symbol names resolved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from app.errors import InputError
from app.live.venue_bars import VenueBars, ccxt_markets
from app.sources import SourceUnavailable

T0 = datetime(2025, 3, 1, tzinfo=UTC)


class MemoryVenue:
    """Closed bars by market, as ``CcxtSource`` returns them (a bar frame)."""

    def __init__(self, rows: dict[str, list[tuple[int, float, float, float, float]]]) -> None:
        self.rows = rows  # market -> (bar index, open, high, low, close)

    def _frame(self, market: str, since: datetime | None) -> pd.DataFrame:
        rows = [
            (T0 + timedelta(minutes=5 * i), o, h, lo, c, 1.0)
            for i, o, h, lo, c in self.rows[market]
            if since is None or T0 + timedelta(minutes=5 * i) >= since
        ]
        frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return frame

    def backfill(self, symbol: str, since: datetime, until: datetime | None = None) -> pd.DataFrame:
        return self._frame(symbol, since)

    def poll_closed(self, symbol: str, last_ts: datetime | None) -> pd.DataFrame:
        return self._frame(symbol, None if last_ts is None else last_ts + timedelta(minutes=5))


def test_bad_rows_are_rejected_and_counted_the_rest_kept_in_time_order() -> None:
    venue = MemoryVenue(
        {
            "A/USD": [(0, 10, 11, 9, 10), (1, 10, 9, 11, 10), (2, 10, 12, 9, 11)],  # 1: high < low
            "B/USD": [(0, 5, 6, 4, 5), (1, 5, 6, 4, 5), (2, 5, 6, 4, 5)],
        }
    )
    bars = VenueBars(venue, {"A": "A/USD", "B": "B/USD"}, lambda: T0 + timedelta(minutes=16))
    got = bars.warmup(3)
    assert [(b.symbol, (b.ts - T0).seconds // 300) for b in got] == [
        ("A", 0), ("B", 0), ("B", 1), ("A", 2), ("B", 2),
    ]  # fmt: skip
    assert sum(bars.rejected["A"].values()) == 1 and "B" not in bars.rejected
    assert bars.poll() == []


def test_a_resumed_symbol_catches_up_after_its_stored_bar_in_the_warm_up() -> None:
    venue = MemoryVenue({m: [(i, 10, 11, 9, 10) for i in range(6)] for m in ("A/USD", "B/USD")})
    stored = T0 + timedelta(minutes=15)  # bar 3 of A is in the store already; B has none
    bars = VenueBars(venue, {"A": "A/USD", "B": "B/USD"}, lambda: T0 + timedelta(minutes=31),
                     resume_after={"A": stored, "B": None})  # fmt: skip
    got = [(b.symbol, (b.ts - T0).seconds // 300) for b in bars.warmup(10)]
    assert [i for s, i in got if s == "A"] == [4, 5]  # after the stored bar, before trading
    assert [i for s, i in got if s == "B"] == list(range(6))  # B warms up from the venue
    assert bars.poll() == []  # nothing taken twice


def test_a_symbol_the_venue_fails_on_loses_no_bar_of_the_others() -> None:
    venue = MemoryVenue({m: [(i, 10, 11, 9, 10) for i in range(2)] for m in ("A/USD", "B/USD")})
    bars = VenueBars(venue, {"A": "A/USD", "B": "B/USD"}, lambda: T0 + timedelta(minutes=16))
    assert len(bars.warmup(3)) == 4  # bars 0 and 1 of both
    for rows in venue.rows.values():
        rows.append((2, 10, 11, 9, 10))  # bar 2 closes
    real = venue.poll_closed

    def down_on_b(symbol: str, last_ts: datetime | None) -> pd.DataFrame:
        if symbol == "B/USD":
            raise SourceUnavailable("B/USD: 503")
        return real(symbol, last_ts)

    venue.poll_closed = down_on_b  # type: ignore[method-assign]
    with pytest.raises(SourceUnavailable):
        bars.poll()  # A's bar 2 was read, then B failed: A's bar 2 must not count as taken
    venue.poll_closed = real  # type: ignore[method-assign]
    assert [(b.symbol, (b.ts - T0).seconds // 300) for b in bars.poll()] == [("A", 2), ("B", 2)]


def test_symbols_resolve_to_spot_markets_and_unknown_ones_are_named() -> None:
    listed = ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT"]
    assert ccxt_markets(["BTCUSDT", "ETHUSDT"], listed) == {
        "BTCUSDT": "BTC/USDT",
        "ETHUSDT": "ETH/USDT",
    }
    with pytest.raises(InputError, match="DOGEUSDT"):
        ccxt_markets(["DOGEUSDT"], listed)
    with pytest.raises(InputError, match="grace"):
        VenueBars(MemoryVenue({}), {"A": "A/USD"}, lambda: T0, grace=timedelta(seconds=-1))
