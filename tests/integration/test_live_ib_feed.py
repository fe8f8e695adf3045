"""``python -m app live`` for stocks: the closed 5-minute bars come from TWS through real
ib_async, here a loopback TWS speaking the socket protocol (reqHistoricalData with
keepUpToDate) whose clock is the wall clock. The worker warms the features up from the
subscription's history, trades the newest closed bar, stops on --duration and writes its
summary; the store holds every warm-up bar once, and FINRA's daily files (a loopback CDN)
polled beside the bars gave each published day its dark_pool_ratio."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd

from app.cli.main import main
from app.live.live_feed import warmup_bars
from app.live.window_spec import WindowSpec
from app.sources.dark_pool import daily_bar_volumes
from app.sources.flow_sources import NEW_YORK
from app.store import open_store
from app.types import AssetClass
from tests.integration.test_dark_pool_finra import HEADER
from tests.support.ib_history import tws_thread
from tests.unit.live.session_builders import save_promoted, sim_bars, tiny_model
from tests.unit.sources.side_loopback import LoopbackServer, text_answer

BAR_S = 300
TICKERS = ("AAPL", "MSFT")


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
    with tws_thread(bars, lambda: datetime.now(UTC)) as port, LoopbackServer() as finra:
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
        assert pd.Timestamp(last).tz_localize(None) <= newest_closed.tz_localize(None)

    # FINRA polled beside the bars: each published day with stored bars has its ratio, the
    # day's off-exchange volume over the day's bar volume stored when it was polled (New York
    # day; a real session has closed by the 18:00 publication, these simulated bars run 24 h,
    # so the poll saw the day's bars up to at least 18:00 and at most all of them)
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
                closed = stored_bars[stored_bars["ts"] + pd.Timedelta(minutes=5) <= published]
                by_publication = daily_bar_volumes(closed, ticker)[(ticker, day)]
                full = volumes[(ticker, day)]
                off = off_volume[day]
                assert off / full * (1 - 1e-12) <= value <= off / by_publication * (1 + 1e-12)
    finally:
        store.close()
