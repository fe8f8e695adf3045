"""Trade prints through the live feed path: a crypto replay on a ``ReplayClock``, ccxt's real
Binance class polling the loopback exchange's ``/api/v3/aggTrades`` tape (served only up to the
clock, as a venue serves what has printed) through ``SideFeed`` -> DuckDB ``flow`` ->
``FeedWorker``'s incremental features; compared with the batch engine on prints and blocks
recomputed here from the tape."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from app.clock import ReplayClock
from app.config import CcxtSettings
from app.features.batch import build_features
from app.features.spec import default_spec
from app.live.feed import FeedWorker
from app.live.side_feed import CcxtPrintPoller, SideFeed
from app.live.window_spec import WindowSpec
from app.sources.ccxt_source import CcxtSource
from app.sources.trade_prints import BlockRule
from app.store import open_store
from app.types import AssetClass, Bar
from tests.builders import bars_frame
from tests.integration.test_trade_prints_loopback import T0, _agg_trades, _independent_blocks
from tests.support.binance_loopback import BinanceState, binance_loopback
from tests.unit.features.feat_builders import assert_frames_close


def _bars(frame: pd.DataFrame) -> list[Bar]:
    cols = ["open", "high", "low", "close", "volume"]
    return [
        Bar("BTCUSDT", ts.to_pydatetime(), *(float(row[c]) for c in cols))
        for ts, (_, row) in zip(frame["ts"], frame.iterrows(), strict=True)
    ]


def _feed(exchange, store, clock) -> SideFeed:  # type: ignore[no-untyped-def]
    poller = CcxtPrintPoller(exchange, "BTC/USDT", since=T0, rule=BlockRule(measure="size"),
                             every=timedelta(minutes=1))  # fmt: skip
    return SideFeed([poller], store, clock)


def test_prints_polled_by_the_feed_give_the_batch_features(tmp_path) -> None:
    tape = _agg_trades(2600)
    state = BinanceState({"BTCUSDT": 60_000.0}, {"USDT": 0.0})
    state.tape["BTCUSDT"] = tape
    clock = ReplayClock(T0)
    state.tape_now_ms = lambda: int(clock.now().timestamp() * 1000)
    frame = bars_frame(n=12 * 3, symbol="BTCUSDT", start=T0)
    bars = _bars(frame)
    spec = default_spec(AssetClass.CRYPTO)
    store = open_store(f"duckdb:///{tmp_path}/feed.db")
    try:
        with binance_loopback(state) as url:
            api = {"public": f"{url}/api/v3"}
            exchange = CcxtSource.from_settings(CcxtSettings(), api_urls=api).exchange
            side = _feed(exchange, store, clock)
            worker = FeedWorker("crypto", ["BTCUSDT"], WindowSpec.for_spec(spec, 4), store,
                                keep_rows=True, store_every=12, side=side)  # fmt: skip
            for bar in bars[:18]:
                worker.on_item(bar)
            # a restarted side feed: cursor and block history come back from the store
            worker.side = _feed(exchange, store, clock)
            for bar in bars[18:]:
                worker.on_item(bar)
        polls = (
            side.stats["ccxt_trades:BTC/USDT"].polls
            + worker.side.stats["ccxt_trades:BTC/USDT"].polls
        )
        assert polls == len(bars)  # its own cadence (1 min) here means once per bar close
        assert any("fromId" in q for q in state.tape_requests)
        stored = store.read("flow", "BTCUSDT")
    finally:
        store.close()

    last_close = frame["ts"].iloc[-1] + pd.Timedelta(minutes=5)
    public = [t for t in tape if pd.Timestamp(t["T"], unit="ms", tz="UTC") <= last_close]
    assert 0 < len(public) < len(tape)  # the replay ends before the tape does
    per_ms, blocks = _independent_blocks(public)
    stamps = pd.to_datetime(per_ms.index.to_numpy(), unit="ms", utc=True)
    prints = stored[stored["kind"] == "trade_print"].sort_values("ts")
    assert list(prints["ts"]) == list(stamps)  # every print once, none from after the clock
    np.testing.assert_allclose(prints["value"].to_numpy(), per_ms.to_numpy(), rtol=1e-12)
    assert set(stored.loc[stored["kind"] == "block_trade", "ts"]) == blocks and len(blocks) >= 3

    # the batch engine on flow rebuilt from the tape alone
    block_ts = sorted(blocks)
    flow = pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "kind": ["trade_print"] * len(stamps) + ["block_trade"] * len(block_ts),
            "ts": [*stamps, *block_ts],
            "published_at": [*stamps, *block_ts],
            "value": [*per_ms.to_numpy(), *per_ms[[t.value // 1_000_000 for t in block_ts]]],
        }
    )
    for c in ("ts", "published_at"):
        flow[c] = pd.to_datetime(flow[c], utc=True).astype("datetime64[ns, UTC]")
    batch = build_features(frame, asset_class=AssetClass.CRYPTO, flow=flow, spec=spec)
    rows = worker.rows["BTCUSDT"]
    assert [ts for ts, _ in rows] == frame["ts"].astype("int64").tolist()
    live = pd.DataFrame(np.stack([v for _, v in rows]), columns=list(spec.feature_names))
    assert_frames_close(live, batch, rtol=1e-9)
    assert live["trade_size_dev"].nunique() > 10 and live["block_trade_flag"].sum() >= 3
    assert (live["trade_size_dev"] != 0.0).sum() > 20


def test_finra_daily_polled_by_the_feed_on_real_stock_bars(shared_data, tmp_path) -> None:
    """FINRA's daily files from a loopback CDN, polled hourly by the feed of the real AAPL
    bars: the ratio of a covered day holds on the next session's bars, and the live rows equal
    the batch engine's on the stored flow."""
    from datetime import datetime, time

    from app.live.side_feed import FinraDailyPoller
    from app.sources.http import HttpClient, HttpPolicy
    from tests.integration.test_dark_pool_finra import HEADER, NY, _independent_day_volumes
    from tests.unit.sources.side_loopback import LoopbackServer, text_answer

    path = shared_data / "stocks_yahoo_5m" / "AAPL_5m.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    frame = pd.read_csv(path, nrows=78 * 5)  # Wednesday 2025-06-04 .. Tuesday 2025-06-10
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).astype("datetime64[ns, UTC]")
    frame.insert(0, "symbol", "AAPL")
    volumes = _independent_day_volumes(path)
    days = sorted({t.astimezone(NY).date() for t in frame["ts"]})
    covered = {days[1]: 0.44, days[2]: 0.52}  # Thursday, Friday; Monday's file is missing
    bars = [Bar("AAPL", *row) for row in _rows(frame)]
    spec = default_spec(AssetClass.STOCKS)
    clock = ReplayClock(frame["ts"].iloc[0].to_pydatetime())
    store = open_store(f"duckdb:///{tmp_path}/finra.db")
    try:
        with LoopbackServer() as server, HttpClient(HttpPolicy(retries=0)) as client:
            for day, share in covered.items():
                off = int(volumes[day] * share)
                body = f"{HEADER}\n{day:%Y%m%d}|AAPL|{off // 2}|0|{off}|B,Q,N\n"
                server.route(f"/equity/regsho/daily/CNMSshvol{day:%Y%m%d}.txt",
                             text_answer(body, "text/plain"))  # fmt: skip
            poller = FinraDailyPoller(client, ["AAPL"], since=days[0], base_url=server.url)
            side = SideFeed([poller], store, clock)
            worker = FeedWorker("stocks", ["AAPL"], WindowSpec.for_spec(spec, 4), store,
                                keep_rows=True, store_every=12, side=side)  # fmt: skip
            for bar in bars:
                worker.on_item(bar)
            worker.close()  # the last bars to the store
        stored = store.read("flow", "AAPL")
        stored_bars = store.read_bars("AAPL")
    finally:
        store.close()
    ratio = stored[stored["kind"] == "dark_pool_ratio"].sort_values("ts")
    want_ratio = [int(volumes[d] * s) / volumes[d] for d, s in covered.items()]
    np.testing.assert_allclose(ratio["value"].to_numpy(), want_ratio, rtol=1e-12)
    # hourly polls during the sessions: about 7 per day, not one per bar
    assert 20 <= side.stats["finra_daily"].polls <= 40

    live = pd.DataFrame(
        np.stack([v for _, v in worker.rows["AAPL"]]), columns=list(spec.feature_names)
    )
    closes = (frame["ts"] + pd.Timedelta(minutes=5)).dt.tz_convert(NY)
    want = np.zeros(len(frame))
    for k, close in enumerate(closes):
        i = days.index(close.date())
        if i > 0 and days[i - 1] in covered:
            assert close >= datetime.combine(days[i - 1], time(18), tzinfo=NY)
            want[k] = want_ratio[list(covered).index(days[i - 1])]
    np.testing.assert_allclose(live["dark_pool_ratio"].to_numpy(), want, rtol=1e-12, atol=0)
    assert (want > 0).sum() == 2 * 78  # Friday's and Monday's sessions
    batch = build_features(stored_bars, asset_class=AssetClass.STOCKS, flow=stored, spec=spec)
    assert_frames_close(live, batch, rtol=1e-9)


def _rows(frame: pd.DataFrame) -> list[tuple]:
    cols = [frame[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")]
    return [(t.to_pydatetime(), *(float(c[i]) for c in cols)) for i, t in enumerate(frame["ts"])]
