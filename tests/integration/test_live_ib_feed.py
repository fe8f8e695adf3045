"""``python -m app live`` for stocks: the closed 5-minute bars come from TWS through real
ib_async, here a loopback TWS speaking the socket protocol (reqHistoricalData with
keepUpToDate) whose clock is the wall clock. The worker warms the features up from the
subscription's history, trades the newest closed bar, stops on --duration and writes its
summary; the store holds every warm-up bar once, FINRA's daily files (a loopback CDN) polled
beside the bars gave each published day its dark_pool_ratio, and the TWS's trade ticks
(reqHistoricalTicks before the tick-by-tick subscription) became trade_print / block_trade
events, each from its tick time, that make trade_size_dev and block_trade_flag non-neutral."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from app.cli.main import main
from app.features.batch import build_features
from app.live.live_feed import warmup_bars
from app.live.window_spec import WindowSpec
from app.sources.dark_pool import daily_bar_volumes
from app.sources.flow_sources import NEW_YORK
from app.store import open_store
from app.types import AssetClass
from tests.integration.test_dark_pool_finra import HEADER
from tests.support.ib_history import tws_thread
from tests.support.ib_ticks import Tick
from tests.unit.features.feat_builders import assert_frames_close, replay, run_incremental
from tests.unit.live.session_builders import save_promoted, sim_bars, tiny_model
from tests.unit.sources.side_loopback import LoopbackServer, text_answer

BAR_S = 300
TICKERS = ("AAPL", "MSFT")
BLOCK_FLOOR = 10_000.0  # settings' flow.block_floor (shares)


def _tape(end: int, seed: int) -> list[Tick]:
    """~400 prints over the 50 minutes before ``end`` (epoch s), some seconds printing twice,
    sizes of 1-400 shares and eight blocks of 50,000."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(end - 3000, end, 400))
    sizes = rng.integers(1, 400, 400).astype(float)
    sizes[rng.choice(np.arange(80, 400), 8, replace=False)] = 50_000.0
    return [
        Tick(int(t), 150.0 + i * 0.01, s) for i, (t, s) in enumerate(zip(times, sizes, strict=True))
    ]


def _blocks(tape: list[Tick]) -> tuple[pd.Series, set[pd.Timestamp]]:
    """Shares per second, and the seconds whose shares reach the floor and top the 99th
    percentile of the (<= 1000) seconds before (at least 50 of them): recomputed here."""
    per_s = pd.Series([t.size for t in tape], index=[t.time for t in tape]).groupby(level=0).sum()
    v = per_s.to_numpy()
    blocks = {pd.Timestamp(int(t), unit="s", tz=UTC) for i, t in enumerate(per_s.index)
              if i >= 50 and v[i] >= BLOCK_FLOOR and v[i] > np.percentile(v[max(0, i - 1000):i],
                                                                        99.0)}  # fmt: skip
    return per_s, blocks


def test_live_stocks_warm_up_from_tws_and_trade_the_newest_bar(tmp_path, capsys) -> None:
    sim, _ = sim_bars(days=3)
    forming = int(time.time()) // BAR_S * BAR_S  # the bar that opened last is still forming
    bars = {}
    for ticker, frame in zip(TICKERS, sim.values(), strict=True):
        ts = frame["ts"].astype("datetime64[ns, UTC]")
        bars[ticker] = frame.assign(ts=ts + (pd.Timestamp(forming, unit="s", tz=UTC) - ts.iloc[-1]))
    model = tiny_model(bars, asset_class=AssetClass.STOCKS, symbols=TICKERS)
    registry = save_promoted(tmp_path / "registry", model)
    out = tmp_path / "live"
    days = pd.date_range(datetime.now(UTC).date() - timedelta(days=14), datetime.now(UTC).date())
    off_volume = {d.date(): 1_000.0 * (1 + i) for i, d in enumerate(days)}
    # the prints end before the newest closed bar's close: the warm-up hands every one over
    tapes = {t: _tape(forming - 1, seed) for seed, t in enumerate(TICKERS)}
    tws = tws_thread(bars, lambda: datetime.now(UTC), tapes)
    with tws as port, LoopbackServer() as finra:
        for day, off in off_volume.items():  # FINRA's daily file of every day (404 on weekends)
            if day.weekday() < 5:
                body = f"{HEADER}\n" + "".join(
                    f"{day:%Y%m%d}|{t}|{off / 2:.0f}|0|{off:.0f}|B,Q,N\n" for t in TICKERS
                )
                finra.route(f"/equity/regsho/daily/CNMSshvol{day:%Y%m%d}.txt",
                            text_answer(body, "text/plain"))  # fmt: skip
        config = tmp_path / "settings.toml"
        config.write_text(
            f'registry_dir = "{registry}"\n[ib]\nport = {port}\nclient_id = 31\n'
            f'[flow]\nfinra_base_url = "{finra.url}"\n'
        )
        argv = ["live", "--config", str(config), "--duration", "2", "--no-panel", "--port", "0"]
        assert main([*argv, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["stopped"] == "duration" and summary["errors"] == []
    assert summary["bars"] >= 1 and summary["signals"] >= 2
    signals = pd.read_csv(out / "signals.csv", parse_dates=["ts"])
    newest_closed = pd.Timestamp(forming - BAR_S, unit="s", tz=UTC)
    first = signals[signals["ts"] == signals["ts"].min()]
    assert first["ts"].iloc[0] >= newest_closed and set(first["ticker"]) == set(TICKERS)
    stored = (
        duckdb.connect(str(out / "journal.db"), read_only=True)
        .execute("SELECT symbol, count(*), count(DISTINCT ts), max(ts) FROM bars GROUP BY symbol")
        .fetchall()
    )
    assert {s for s, *_ in stored} == set(TICKERS)
    warm = warmup_bars(WindowSpec.from_bundle(model.bundle))
    for _, n, distinct, last in stored:  # the warm-up, each bar once, the forming bar not
        assert n == distinct and warm <= n <= warm + 1  # + a bar closed during the run
        newest = newest_closed + (n - warm) * pd.Timedelta(seconds=BAR_S)
        assert pd.Timestamp(last).tz_localize(None) <= newest.tz_localize(None)

    # FINRA polled beside the bars: each published day with stored bars has its ratio, the
    # day's off-exchange volume over the day's bar volume stored when it was polled (New York
    # day; a real session has closed by the 18:00 publication, these simulated bars run 24 h,
    # so the poll saw the day's bars closed before 18:00 at least and at most all of them)
    assert summary["side_polls"]["finra_daily"]["failures"] == 0
    store = open_store(f"duckdb:///{out / 'journal.db'}")
    try:
        for ticker in TICKERS:
            flow = store.read("flow", ticker)
            ratio = flow[flow["kind"] == "dark_pool_ratio"]
            stored_bars = store.read_bars(ticker)
            volumes = daily_bar_volumes(stored_bars, ticker)
            assert len(ratio) >= 1
            for published, value in zip(ratio["published_at"], ratio["value"], strict=True):
                day = published.tz_convert(NEW_YORK).date()  # published 18:00 New York that day
                # the poll runs before the bar whose close is its clock is taken: at 18:00 the
                # bar closing at 18:00 is not stored yet (a real session closed at 16:00)
                closed = stored_bars[stored_bars["ts"] + pd.Timedelta(minutes=5) < published]
                by_publication = daily_bar_volumes(closed, ticker)[(ticker, day)]
                full = volumes[(ticker, day)]
                off = off_volume[day]
                assert off / full * (1 - 1e-12) <= value <= off / by_publication * (1 + 1e-12)

        # IB's trade ticks: every print once (a second's prints one event), blocks as
        # recomputed here, each published at its tick time; the features read them from then
        polled = summary["side_polls"]["ib_prints"]
        assert polled["failures"] == 0 and polled["items_new"] > 0
        spec = WindowSpec.from_bundle(model.bundle).spec
        assert {"trade_size_dev", "block_trade_flag"} <= set(spec.flow_features)
        for ticker in TICKERS:
            flow = store.read("flow", ticker)
            per_s, blocks = _blocks(tapes[ticker])
            prints = flow[flow["kind"] == "trade_print"].sort_values("ts")
            assert [int(t.timestamp()) for t in prints["ts"]] == per_s.index.tolist()
            np.testing.assert_allclose(prints["value"].to_numpy(), per_s.to_numpy(), rtol=1e-12)
            stored_blocks = flow[flow["kind"] == "block_trade"]
            assert set(stored_blocks["ts"]) == blocks and len(blocks) >= 3
            kinds = flow["kind"].isin(["trade_print", "block_trade"])
            assert (flow.loc[kinds, "published_at"] == flow.loc[kinds, "ts"]).all()

            stored_bars = store.read_bars(ticker)
            batch = build_features(stored_bars, asset_class=AssetClass.STOCKS, flow=flow, spec=spec)
            closes = (stored_bars["ts"] + pd.Timedelta(minutes=5)).astype("int64").to_numpy()
            pubs = stored_blocks["published_at"].astype("int64").to_numpy()
            flagged = [((pubs <= c) & (pubs > c - BAR_S * 10**9)).any() for c in closes]
            np.testing.assert_array_equal(batch["block_trade_flag"].to_numpy(), flagged)
            first = prints["published_at"].iloc[0].value
            dev = batch["trade_size_dev"].to_numpy()
            assert (dev[closes < first] == 0.0).all() and (dev[closes >= first] != 0.0).sum() > 5
            incremental = run_incremental(spec, stored_bars, replay(stored_bars["ts"], None, None,
                                                                    flow))  # fmt: skip
            assert_frames_close(incremental, batch, rtol=1e-9)
    finally:
        store.close()
