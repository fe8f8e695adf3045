"""``SideFeed`` on a ``ReplayClock``: each poller at its own cadence, items stored once and
handed over once (a re-read file, a restarted feed), with FINRA's weekly ATS file as the source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.clock import ReplayClock
from app.errors import InputError
from app.live.side_feed import AtsWeeklyPoller, SideFeed
from app.store import open_store
from tests.integration.test_ats_weekly import _weekly_file


class Taken:
    """What a FeedWorker would receive (``on_polled``)."""

    def __init__(self) -> None:
        self.items: list = []

    def on_polled(self, items) -> None:  # type: ignore[no-untyped-def]
        self.items.extend(items)


def test_ats_file_polled_daily_stored_and_handed_over_once(tmp_path) -> None:
    text, totals = _weekly_file()
    path = tmp_path / "ats.txt"
    path.write_text(text)
    clock = ReplayClock(datetime(2025, 7, 1, 13, 35, tzinfo=UTC))
    store = open_store(f"duckdb:///{tmp_path}/ats.db")
    try:
        feed = SideFeed([AtsWeeklyPoller(path, ["AAPL"])], store, clock)
        taken = Taken()
        assert feed.hand_to(taken) == len(totals)  # first poll: the whole file
        assert {p.kind for p in taken.items} == {"inst_volume"}
        assert sorted(p.value for p in taken.items) == sorted(totals.values())
        clock.advance_to(clock.now() + timedelta(hours=23))
        assert feed.hand_to(taken) == 0  # not due: its cadence is a day
        assert feed.stats["finra_ats:ats.txt"].polls == 1
        clock.advance_to(clock.now() + timedelta(hours=1))
        assert feed.hand_to(taken) == 0  # due, re-read, nothing new: nothing handed twice
        assert feed.stats["finra_ats:ats.txt"].polls == 2
        # a new week appended to the file: only it is handed over
        week = "2025-07-14"
        path.write_text(text + f"T1|AAPL|Apple Inc.|SGMT ATS|SGMT|123456|1|{week}|{week}|"
                        "ATS_W_SMBL_FIRM\n")  # fmt: skip
        clock.advance_to(clock.now() + timedelta(days=1))
        assert feed.hand_to(taken) == 1 and taken.items[-1].value == 123456.0
        # a restarted feed (new poller, same store) hands over nothing already stored
        again = SideFeed([AtsWeeklyPoller(path, ["AAPL"])], store, clock)
        assert again.hand_to(Taken()) == 0
        stored = store.read("flow", "AAPL")
        assert len(stored) == len(totals) + 1
    finally:
        store.close()


def test_poller_names_must_be_distinct(tmp_path) -> None:
    clock = ReplayClock(datetime(2025, 7, 1, tzinfo=UTC))
    pollers = [AtsWeeklyPoller(tmp_path / "a.txt"), AtsWeeklyPoller(tmp_path / "a.txt")]
    with pytest.raises(InputError, match="distinct"):
        SideFeed(pollers, store=None, clock=clock)  # type: ignore[arg-type]


def test_a_source_that_stays_down_is_retried_at_its_cadence(tmp_path) -> None:
    """FINRA's CDN answers 503: the poll is counted as failed, the feed goes on, and the same
    day is asked for again an hour later, when the file is there."""
    from datetime import date

    from app.live.side_feed import FinraDailyPoller
    from app.sources.http import HttpClient, HttpPolicy
    from tests.unit.sources.side_loopback import Answer, LoopbackServer, text_answer

    day = date(2025, 6, 2)
    body = "Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market\n20250602|AAPL|5|0|9|Q\n"
    clock = ReplayClock(datetime(2025, 6, 2, 22, 5, tzinfo=UTC))  # after 18:00 New York
    store = open_store(f"duckdb:///{tmp_path}/down.db")
    try:
        with LoopbackServer() as server, HttpClient(HttpPolicy(retries=0)) as client:
            path = f"/equity/regsho/daily/CNMSshvol{day:%Y%m%d}.txt"
            server.route(path, Answer(503), text_answer(body, "text/plain"))
            poller = FinraDailyPoller(client, ["AAPL"], since=day, base_url=server.url)
            feed = SideFeed([poller], store, clock)
            taken = Taken()
            assert feed.hand_to(taken) == 0 and feed.stats["finra_daily"].failures == 1
            clock.advance_to(clock.now() + timedelta(minutes=30))
            assert feed.hand_to(taken) == 0 and len(server.hits(path)) == 1  # not due yet
            clock.advance_to(clock.now() + timedelta(minutes=30))
            feed.hand_to(taken)
        kinds = sorted(p.kind for p in taken.items)
        # no bars stored for the day: the ratio cannot be formed, the FINRA rows are kept
        assert kinds == ["offexchange_volume", "short_volume", "short_volume_ratio"]
        assert feed.stats["finra_daily"].rejected == {"dark_pool_no_consolidated_volume": 1}
        assert poller.next_day == date(2025, 6, 3) and len(server.hits(path)) == 2
    finally:
        store.close()
