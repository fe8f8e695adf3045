"""IBBars over real ib_async and a loopback TWS answering reqHistoricalData and pushing
keepUpToDate updates as the test's clock moves: warm-up from the subscription's history,
closed bars in order and once, a lost update refilled from history, the nightly disconnect."""

from __future__ import annotations

import asyncio
import functools
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from app.config import IBSettings
from app.live.ib_bars import IBBars, duration_since, resubscribe_duration, warmup_duration
from app.sources import SourceUnavailable
from app.sources.ib_source import IBSource
from app.types import AssetClass
from tests.support.ib_history import IBHistory
from tests.unit.broker.ib_loopback import LoopbackTWS, error

BAR = timedelta(minutes=5)
T0 = datetime(2025, 6, 2, 0, 0, tzinfo=UTC)
N = 120  # bars per symbol on the server
CASES = {AssetClass.STOCKS: ("AAPL", "MSFT"), AssetClass.FOREX: ("EURUSD", "USDJPY")}


def _series(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, N)))
    return pd.DataFrame(
        {
            "ts": [T0 + i * BAR for i in range(N)],
            "open": close * 0.9995,
            "high": close * 1.002,
            "low": close * 0.998,
            "close": close,
            "volume": rng.uniform(100, 1000, N).round(),
        }
    )


class Clock:
    """Stands at ``at``; after ``run(speed)`` it moves ``speed`` times as fast as the wall."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.speed = 0.0
        self._since = time.monotonic()

    def run(self, speed: float) -> None:
        self.speed, self._since = speed, time.monotonic()

    def __call__(self) -> datetime:
        return self.at + timedelta(seconds=self.speed * (time.monotonic() - self._since))


def _run(asset_class: AssetClass, work, cls: type[IBBars] = IBBars):  # type: ignore[no-untyped-def]
    async def run():
        symbols = CASES[asset_class]
        tws = LoopbackTWS()
        clock = Clock(T0 + 100 * BAR + timedelta(seconds=40))  # bar 100 is forming
        history = IBHistory(tws, {s: _series(i) for i, s in enumerate(symbols)}, clock)
        port = await tws.start()
        source = IBSource(IBSettings(port=port, client_id=21), connect_timeout=2, request_timeout=2)
        bars = cls(source, symbols, asset_class, clock)
        try:
            return await work(bars, history, tws, clock)
        finally:
            bars.close()
            await tws.stop()

    return asyncio.run(run())


async def _settle() -> None:
    for _ in range(20):  # the update frames cross the loopback socket
        await asyncio.sleep(0.01)


def _stamps(bars, symbol: str) -> list[datetime]:  # type: ignore[no-untyped-def]
    return [b.ts for b in bars if b.symbol == symbol]


@pytest.mark.parametrize("asset_class", list(CASES))
def test_warm_up_then_each_closed_bar_once_in_order(asset_class: AssetClass) -> None:
    async def work(bars: IBBars, history: IBHistory, tws: LoopbackTWS, clock: Clock):
        warm = await bars.warmup(30)
        a, b = bars.symbols
        assert _stamps(warm, a) == [T0 + i * BAR for i in range(70, 100)]  # 100 is forming
        assert [x.ts for x in warm] == sorted(x.ts for x in warm)
        reqs = history.requests
        assert [(r.symbol, r.keep_up_to_date) for r in reqs] == [(a, True), (b, True)]
        assert reqs[0].duration == warmup_duration(30, asset_class)
        expected_show = "TRADES" if asset_class is AssetClass.STOCKS else "MIDPOINT"
        assert reqs[0].what_to_show == expected_show
        assert reqs[0].use_rth is (asset_class is AssetClass.STOCKS)
        assert await bars.poll() == []  # nothing closed since
        clock.at += 3 * BAR  # bars 100-102 close, 103 forms
        history.publish()
        await _settle()
        new = await bars.poll()
        assert _stamps(new, a) == _stamps(new, b) == [T0 + i * BAR for i in (100, 101, 102)]
        final = history.bars[a].iloc[100]
        got = next(x for x in new if x.symbol == a)
        assert got.close == pytest.approx(final["close"])  # the bar's last revision
        assert await bars.poll() == []  # none twice
        assert len(history.requests) == 2 and bars.refills == 0  # no extra request

    _run(asset_class, work)


def test_a_resumed_ticker_catches_up_after_its_stored_bar_in_the_warm_up() -> None:
    a, b = CASES[AssetClass.STOCKS]
    stored = T0 + 95 * BAR  # a restored feed holds AAPL's bars to 95, none of MSFT

    async def work(bars: IBBars, history: IBHistory, tws: LoopbackTWS, clock: Clock):
        warm = await bars.warmup(30)
        assert _stamps(warm, a) == [T0 + i * BAR for i in range(96, 100)]
        assert _stamps(warm, b) == [T0 + i * BAR for i in range(70, 100)]
        back = resubscribe_duration(stored, clock(), AssetClass.STOCKS)
        assert [r.duration for r in history.requests] == [
            back,
            warmup_duration(30, AssetClass.STOCKS),
        ]
        assert await bars.poll() == []  # none twice

    resumed = functools.partial(IBBars, resume_after={a: stored, b: None})
    _run(AssetClass.STOCKS, work, resumed)  # type: ignore[arg-type]


def test_a_lost_update_is_refilled_from_history_not_skipped() -> None:
    async def work(bars: IBBars, history: IBHistory, tws: LoopbackTWS, clock: Clock):
        await bars.warmup(10)
        clock.at += 4 * BAR  # bars 100-103 close
        history.publish(skip=frozenset({T0 + 101 * BAR, T0 + 102 * BAR}))  # IB never sent them
        await _settle()
        new = await bars.poll()
        a = bars.symbols[0]
        assert _stamps(new, a) == [T0 + i * BAR for i in (100, 101, 102, 103)]
        assert bars.refills == 2  # one history request per ticker
        refill = history.requests[-1]
        assert not refill.keep_up_to_date and refill.duration == duration_since(
            T0 + 99 * BAR, clock.at
        )

    _run(AssetClass.STOCKS, work)


def test_the_nightly_disconnect_is_reported_then_the_gap_refilled() -> None:
    async def work(bars: IBBars, history: IBHistory, tws: LoopbackTWS, clock: Clock):
        await bars.warmup(10)
        port = tws._server.sockets[0].getsockname()[1]  # noqa: SLF001 - reopened on it below
        await tws.stop()  # TWS restarts: every client dropped, the port closed
        await _settle()
        clock.at += 2 * BAR
        with pytest.raises(SourceUnavailable, match=rf"IB at 127\.0\.0\.1:{port}"):
            await bars.poll()
        await tws.start(port)  # TWS is back
        clock.at += 2 * BAR  # bars 100-103 closed meanwhile
        new = await bars.poll()
        a = bars.symbols[0]
        assert _stamps(new, a) == [T0 + i * BAR for i in (100, 101, 102, 103)]
        again = history.requests[-1]
        assert again.keep_up_to_date and again.duration == "5 D"  # a few days back, at least
        clock.at += BAR
        history.publish()
        await _settle()
        assert _stamps(await bars.poll(), a) == [T0 + 104 * BAR]

    _run(AssetClass.FOREX, work)


def test_subscriptions_ib_ended_on_a_live_socket_are_taken_up_again() -> None:
    async def work(bars: IBBars, history: IBHistory, tws: LoopbackTWS, clock: Clock):
        await bars.warmup(10)
        a, b = bars.symbols
        a_req = next(r for r, s in history.subs.items() if s == a)
        tws.send_all(error(int(a_req), 162, "Historical Market Data Service error message"))
        await _settle()
        clock.at += 2 * BAR
        history.publish()  # b's subscription still updates; a's is gone at IB
        await _settle()
        new = await bars.poll()
        assert _stamps(new, a) == _stamps(new, b) == [T0 + 100 * BAR, T0 + 101 * BAR]
        assert [(r.symbol, r.keep_up_to_date) for r in history.requests[2:]] == [(a, True)]
        tws.send_all(error(-1, 1101, "Connectivity restored - data lost"))
        await _settle()
        clock.at += BAR
        assert _stamps(await bars.poll(), b) == [T0 + 102 * BAR]  # from the new subscriptions
        assert [(r.symbol, r.keep_up_to_date) for r in history.requests[3:]] == [
            (a, True),
            (b, True),
        ]

    _run(AssetClass.STOCKS, work)


def test_durations_cover_the_bars_asked() -> None:
    assert warmup_duration(78, AssetClass.STOCKS) == "6 D"  # 2 sessions (79 bars), a weekend
    assert warmup_duration(802, AssetClass.STOCKS) == "19 D"
    assert warmup_duration(802, AssetClass.FOREX) == "8 D"
    assert duration_since(T0, T0 + 3 * BAR) == "1200 S"
    assert duration_since(T0, T0 + timedelta(days=3)) == "5 D"
    # over a weekend a narrow window would answer nothing: a few days at least
    friday_close = datetime(2025, 6, 6, 19, 55, tzinfo=UTC)
    saturday = friday_close + timedelta(hours=14)
    assert resubscribe_duration(friday_close, saturday, AssetClass.STOCKS) == "5 D"
    assert resubscribe_duration(T0, T0 + timedelta(days=9), AssetClass.FOREX) == "11 D"


class _ShortWaits(IBBars):
    """The clock jumps to 50 ms before the next close, then runs at the wall's pace."""

    def due(self) -> datetime:
        close = super().due()
        self.clock.at = close - timedelta(milliseconds=50)
        self.clock.run(1.0)
        return close


def test_live_closes_reports_tws_down_then_resumes_without_a_gap(tmp_path) -> None:
    """Through ``live_closes`` and the feed path (each wait for a bar close shortened to 50 ms):
    the warm-up's newest close is traded, TWS down at the next close is reported through
    ``on_error``, and at the close after it both bars closed since come, stored once each."""
    from app.features.spec import default_spec
    from app.live.feed import FeedWorker
    from app.live.live_feed import live_closes
    from app.live.window_spec import WindowSpec
    from app.store import DuckDBStore

    async def work(bars: IBBars, history: IBHistory, tws: LoopbackTWS, clock: Clock):
        bars.grace = timedelta(0)
        store = DuckDBStore(tmp_path / "bars.db")
        window = WindowSpec.for_spec(default_spec(AssetClass.FOREX), 4)
        feed = FeedWorker(AssetClass.FOREX, list(bars.symbols), window, store, store_every=64)
        port = tws._server.sockets[0].getsockname()[1]  # noqa: SLF001
        errors: list[str] = []

        def on_error(message: str) -> None:  # TWS is back after the first failed poll
            errors.append(message)
            asyncio.get_running_loop().create_task(tws.start(port))

        stop = asyncio.Event()
        closes = live_closes(bars, feed, stop, warmup=30, on_error=on_error)
        first = await anext(closes)
        assert first.ts == T0 + 99 * BAR  # the newest closed bar of the warm-up
        await tws.stop()  # down until the poll at bar 100's close has failed
        seen = [(await anext(closes)).ts for _ in range(2)]
        assert seen == [T0 + 100 * BAR, T0 + 101 * BAR]
        assert len(errors) == 1 and "forex feed: IB at 127.0.0.1" in errors[0]
        stop.set()
        await closes.aclose()
        feed.close()
        stored = store.read_bars(bars.symbols[0])
        store.close()
        stamps = [t.to_pydatetime() for t in stored["ts"]]
        assert stamps == [T0 + i * BAR for i in range(70, 102)]  # each once, none lost

    _run(AssetClass.FOREX, work, _ShortWaits)
