"""``IBPrintPoller``: prints from ib_async's own tick objects (no socket) through ``SideFeed`` ->
DuckDB ``flow``; then over real ib_async and the loopback TWS (tests/support/ib_ticks.py):
``reqTickByTickData`` subscribed, the stretch before it read from ``reqHistoricalTicks`` page by
page, live ticks handed over from their tick time on, a restart storing nothing twice, the
subscriptions IB ended taken up again, and the stretch they missed read back (each print once, in
time order, the live ones waiting for it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from ib_async.objects import TickAttribLast, TickByTickAllLast

from app.clock import ReplayClock
from app.config import IBSettings
from app.live.ib_print_poller import GIVE_UP, SEAM, IBPrintPoller
from app.live.side_feed import SideFeed
from app.sources.ib_source import IBSource
from app.sources.trade_prints import BlockRule, TradePrint, print_events
from app.store import open_store
from tests.support.ib_ticks import IBTicks, Tick
from tests.unit.broker.ib_loopback import LoopbackTWS, error

T0 = datetime(2025, 1, 6, 14, 30, tzinfo=UTC)
RULE = BlockRule(measure="size", floor=10_000.0)


def _sizes(n: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 400, n).astype(float)
    sizes[rng.choice(np.arange(60, n), 6, replace=False)] = 50_000.0  # the blocks
    return sizes


def _ticks(n: int) -> list[TickByTickAllLast]:
    ok = TickAttribLast()
    return [TickByTickAllLast(2, T0 + timedelta(seconds=7 * i), 150.0 + i * 0.01, s, ok, "NYSE",
                              "") for i, s in enumerate(_sizes(n))]  # fmt: skip


def _one_pass(ticks: list[TickByTickAllLast]) -> list:
    prints = [TradePrint("AAPL", t.time, t.price, t.size) for t in ticks]
    return print_events(prints, RULE)


def _keys(frame: pd.DataFrame) -> list[tuple[str, pd.Timestamp, float]]:
    rows = zip(frame["kind"], frame["ts"], frame["value"], strict=True)
    return sorted((str(k), t, float(v)) for k, t, v in rows)


def test_polls_hand_over_prints_from_their_tick_time_and_a_restart_stores_nothing_twice() -> None:
    ticks = _ticks(300)
    store = open_store("duckdb://:memory:")
    clock = ReplayClock(T0)
    poller = IBPrintPoller(IBSource(IBSettings()), ["AAPL"], clock.now, rule=RULE)  # no socket
    feed = SideFeed([poller], store, clock)
    unreported = TickByTickAllLast(2, T0, 150.0, 90_000.0, TickAttribLast(unreported=True), "", "")
    bid_ask = TickByTickAllLast(3, T0, 150.0, 5.0, TickAttribLast(), "", "")
    assert poller.take("AAPL", [*ticks[:200], unreported, bid_ask]) == 200
    cut = ticks[120].time
    clock.advance_to(cut)
    first = feed.poll_due()
    assert max(p.ts for p in first) == cut  # look-ahead: a print waits until its tick time
    assert {p.ts for p in first if p.kind == "trade_print"} == {t.time for t in ticks[:121]}
    assert all(p.published_at == p.ts for p in first)
    assert feed.stats["ib_prints"].rejected == {"unreported": 1, "not_a_last_tick": 1}

    # restart after a crash: the next run's buffer repeats prints already stored
    clock2 = ReplayClock(cut)
    again = IBPrintPoller(IBSource(IBSettings()), ["AAPL"], clock2.now, rule=RULE)
    feed2 = SideFeed([again], store, clock2)
    again.take("AAPL", ticks[100:])
    clock2.advance_to(ticks[-1].time)
    second = feed2.poll_due()
    assert min(p.ts for p in second) == ticks[121].time
    assert feed2.stats["ib_prints"].rejected == {"already_stored": 21}
    # the block percentiles resumed from the stored sizes: one uninterrupted run's events
    want = _one_pass(ticks)
    assert sum(e.kind == "block_trade" for e in want) >= 4
    assert _keys(store.read("flow", "AAPL")) == sorted((e.kind, pd.Timestamp(e.ts), e.value)
                                                      for e in want)  # fmt: skip
    store.close()


def test_the_block_rule_must_measure_size() -> None:
    with pytest.raises(Exception, match="must measure size"):
        IBPrintPoller(IBSource(IBSettings()), ["AAPL"], lambda: T0, rule=BlockRule())


async def _settle() -> None:
    for _ in range(20):  # frames cross the loopback socket
        await asyncio.sleep(0.01)


def _tape(now: datetime, n: int, seed: int) -> list[Tick]:
    """``n`` ticks over the 50 minutes before ``now``, two or three per second at times."""
    rng = np.random.default_rng(seed)
    start = int(now.timestamp()) - 3000
    times = np.sort(rng.integers(start, int(now.timestamp()) - 1, n))
    return [Tick(int(t), 100.0 + i * 1e-3, float(s)) for i, (t, s) in
            enumerate(zip(times, _sizes(n, seed), strict=True))]  # fmt: skip


def _run(work, symbols=("AAPL", "MSFT")):  # type: ignore[no-untyped-def]
    async def run():
        now = datetime.now(UTC)
        tws = LoopbackTWS()
        ticks = IBTicks(tws, {s: _tape(now, 1500 - 400 * i, i) for i, s in enumerate(symbols)},
                        lambda: datetime.now(UTC))  # fmt: skip
        port = await tws.start()
        source = IBSource(IBSettings(port=port, client_id=23), connect_timeout=2)
        store = open_store("duckdb://:memory:")
        poller = IBPrintPoller(source, symbols, lambda: datetime.now(UTC), rule=RULE, timeout=2)
        try:
            return await work(poller, ticks, tws, store)
        finally:
            poller.close()
            source.disconnect()
            store.close()
            await tws.stop()

    return asyncio.run(run())


def test_start_backfills_by_page_then_live_ticks_come_from_their_tick_time() -> None:
    async def work(poller: IBPrintPoller, ticks: IBTicks, tws: LoopbackTWS, store):  # type: ignore[no-untyped-def]
        await poller.start(store)
        assert ticks.subscribed == ["AAPL", "MSFT"]
        pages = [s for s, _ in ticks.history_requests]
        assert pages == ["AAPL", "AAPL", "MSFT", "MSFT"]  # 1500 ticks: 2 pages; 1100: 2
        a = ticks.ticks["AAPL"]
        second = datetime.strptime(ticks.history_requests[1][1], "%Y%m%d %H:%M:%S UTC")
        assert int(second.replace(tzinfo=UTC).timestamp()) == a[999].time + 1  # a whole second
        feed = SideFeed([poller], store, ReplayClock(datetime.now(UTC)))
        old = feed.poll_due()
        assert poller.backfilled == 2600 and poller.gaps == 0
        n_prints = sum(p.kind == "trade_print" for p in old)
        assert n_prints == len({t.time for t in a}) + len({t.time for t in ticks.ticks["MSFT"]})

        before = datetime.now(UTC)
        await asyncio.sleep(0.01)
        stamp = int(datetime.now(UTC).timestamp())
        ticks.ticks["AAPL"].append(Tick(stamp, 101.0, 70_000.0))  # a live block
        ticks.ticks["MSFT"].append(Tick(stamp, 55.0, 10.0))
        assert ticks.publish() == 2
        await _settle()
        assert poller.poll(before, store).items == []  # published after ``before``: waits
        live = poller.poll(datetime.now(UTC), store).items
        assert {(p.symbol, p.kind) for p in live} == {("AAPL", "trade_print"),
                                                      ("AAPL", "block_trade"),
                                                      ("MSFT", "trade_print")}  # fmt: skip
        assert all(p.ts > before for p in live)  # stamped at arrival, never before

    _run(work)


def test_a_restart_reads_history_after_the_last_stored_print_only() -> None:
    async def work(poller: IBPrintPoller, ticks: IBTicks, tws: LoopbackTWS, store):  # type: ignore[no-untyped-def]
        await poller.start(store)
        SideFeed([poller], store, ReplayClock(datetime.now(UTC))).poll_due()
        stored = len(store.read("flow"))
        poller.close()
        again = IBPrintPoller(poller.source, poller.symbols, poller.clock, rule=RULE, timeout=2)
        await again.start(store)
        last = max(t.time for t in ticks.ticks["AAPL"])
        start = datetime.strptime(ticks.history_requests[-2][1], "%Y%m%d %H:%M:%S UTC")
        assert int(start.replace(tzinfo=UTC).timestamp()) == last  # from the newest stored
        feed = SideFeed([again], store, ReplayClock(datetime.now(UTC)))
        assert feed.poll_due() == [] and len(store.read("flow")) == stored
        assert again.backfilled == 0  # the newest stored second is not read back

    _run(work)


def test_subscriptions_ib_ended_are_taken_up_again_then_given_up() -> None:
    async def work(poller: IBPrintPoller, ticks: IBTicks, tws: LoopbackTWS, store):  # type: ignore[no-untyped-def]
        poller.backfill = timedelta(0)
        await poller.start(store)
        now = datetime.now(UTC)
        tws.send_all(error(-1, 1101, "Connectivity restored - data lost"))
        await _settle()
        poller.poll(now, store)
        await _settle()
        assert ticks.subscribed == ["AAPL", "MSFT"] * 2
        tws.drop_clients()  # IB's nightly restart
        await _settle()
        poller.poll(now, store)  # not connected: nothing to subscribe on
        await poller.source.connect()  # IBBars reconnects before the next bar's poll
        poller.poll(now, store)
        await _settle()
        assert ticks.subscribed == ["AAPL", "MSFT"] * 3
        for _ in range(GIVE_UP):  # e.g. 10190: max number of tick-by-tick requests reached
            req = [r for r, s in ticks.subs.items() if s == "MSFT"][-1]  # the live one
            tws.send_all(error(int(req), 10190, "Max number of tick-by-tick requests reached"))
            await _settle()
            poller.poll(now, store)
            await _settle()
        assert ticks.subscribed[6:] == ["MSFT"] * (GIVE_UP - 1)  # then left out

    _run(work)


def _live_req(ticks: IBTicks, symbol: str) -> int:
    return int([r for r, s in ticks.subs.items() if s == symbol][-1])


async def _past_seam(resubscribed: datetime) -> None:
    """Until the resubscription's second is over by ``SEAM`` (its read-backs are released)."""
    left = resubscribed.replace(microsecond=0) + SEAM - datetime.now(UTC)
    await asyncio.sleep(max(left.total_seconds(), 0.0) + 0.01)


def test_the_prints_while_a_subscription_was_ended_are_read_back_once_in_order() -> None:
    async def work(poller: IBPrintPoller, ticks: IBTicks, tws: LoopbackTWS, store):  # type: ignore[no-untyped-def]
        now = int(datetime.now(UTC).timestamp())
        for symbol in ticks.ticks:  # the tapes end 10 s ago: seconds for the gap's prints
            ticks.ticks[symbol] = [t for t in ticks.ticks[symbol] if t.time < now - 10]
        await poller.start(store)
        assert poller.poll(datetime.now(UTC), store).rows_read == poller.backfilled
        read, requests = poller.backfilled, len(ticks.history_requests)
        newest = max(t.time for t in ticks.ticks["AAPL"])
        tws.send_all(error(_live_req(ticks, "AAPL"), 10089, "No market data permissions"))
        await _settle()
        gap = [Tick(now - 8, 101.0, 300.0), Tick(now - 8, 101.1, 7.0),
               Tick(now - 5, 101.2, 80_000.0), Tick(now - 2, 101.3, 20.0)]  # fmt: skip
        ticks.ticks["AAPL"] += gap  # traded while unsubscribed: never sent live
        if (us := datetime.now(UTC).microsecond) > 800_000:  # the next poll within this second
            await asyncio.sleep((1_000_000 - us) / 1e6 + 0.01)
        both = Tick(int(datetime.now(UTC).timestamp()), 102.0, 33.0)  # traded just after the
        ticks.ticks["AAPL"].append(both)  # resubscription: IB reads it back (exchange second)

        first = poller.poll(datetime.now(UTC), store)  # subscribes AAPL again
        resubscribed = datetime.now(UTC)
        assert int(resubscribed.timestamp()) == both.time and first.items == []
        await _settle()
        assert ticks.subscribed == ["AAPL", "MSFT", "AAPL"]
        sent = datetime.now(UTC)
        tws.send_all(("99", str(_live_req(ticks, "AAPL")), "2", str(both.time), "102.0", "33.0",
                      "0", "NYSE", ""))  # ... and sends it live  # fmt: skip
        ticks.ticks["MSFT"].append(Tick(both.time, 55.0, 10.0))
        assert ticks.publish() == 1
        await _settle()
        clock, poller.clock = poller.clock, lambda: resubscribed  # its second not over: AAPL
        held = poller.poll(datetime.now(UTC), store)  # waits for its read-back, MSFT does not
        poller.clock = clock
        assert [(p.symbol, p.kind) for p in held.items] == [("MSFT", "trade_print")]
        start = datetime.strptime(ticks.history_requests[requests][1], "%Y%m%d %H:%M:%S UTC")
        assert int(start.replace(tzinfo=UTC).timestamp()) == newest  # from the newest print seen
        assert len(ticks.history_requests) == requests + 1  # one page

        await _past_seam(resubscribed)
        back = poller.poll(datetime.now(UTC), store)
        prints = [p for p in back.items if p.kind == "trade_print"]
        stamps = [now - 8, now - 5, now - 2]  # exchange seconds, in order
        assert [int(p.ts.timestamp()) for p in prints[:3]] == stamps
        assert prints[0].value == 307.0  # one instant: one event
        assert prints[3].ts > sent and prints[3].value == 33.0  # live, stamped at arrival
        assert len(prints) == 4 and back.rows_read == 5
        assert [p.ts for p in back.items if p.kind == "block_trade"] == [prints[1].ts]
        assert back.rejected == {"read_live_too": 1}  # the seam's trade, read back and live
        assert poller.backfilled == read + 5 and poller.gaps == 0
        assert poller.poll(datetime.now(UTC), store).items == []  # once

    _run(work)


def test_a_disconnect_reads_each_ticker_back_within_the_page_budget() -> None:
    async def work(poller: IBPrintPoller, ticks: IBTicks, tws: LoopbackTWS, store):  # type: ignore[no-untyped-def]
        poller.backfill = timedelta(0)  # nothing read at start
        await poller.start(store)
        assert poller.poll(datetime.now(UTC), store).items == [] and poller.backfilled == 0
        poller.backfill, poller.backfill_pages = timedelta(hours=1), 1
        tws.drop_clients()  # IB's nightly restart: the tapes (50 minutes) traded meanwhile
        ticks.subs.clear()  # TWS forgets a dropped client's subscriptions
        await _settle()
        await poller.source.connect()
        assert poller.poll(datetime.now(UTC), store).items == []  # subscribed again
        resubscribed = datetime.now(UTC)
        await _settle()
        assert ticks.subscribed == ["AAPL", "MSFT"] * 2
        await _past_seam(resubscribed)
        back = poller.poll(datetime.now(UTC), store)
        page = {}  # one page each: 1000 ticks and the rest of the 1000th's second
        for symbol, tape in ticks.ticks.items():
            page[symbol] = [t for t in tape if t.time <= tape[999].time]
        assert poller.backfilled == back.rows_read == sum(len(p) for p in page.values())
        assert poller.gaps == 2  # both budgets ran out
        got = sorted((p.symbol, int(p.ts.timestamp())) for p in back.items
                     if p.kind == "trade_print")  # fmt: skip
        assert got == sorted({(s, t.time) for s, p in page.items() for t in p})

    _run(work)
