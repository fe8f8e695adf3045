"""``python -m app live`` for stocks: the closed 5-minute bars come from TWS through real
ib_async, here a loopback TWS speaking the socket protocol (reqHistoricalData with
keepUpToDate) whose clock is the wall clock. The worker warms the features up from the
subscription's history, trades the newest closed bar, stops on --duration and writes its
summary; the store holds every warm-up bar once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import duckdb
import pandas as pd

from app.cli.main import main
from app.live.live_feed import warmup_bars
from app.live.window_spec import WindowSpec
from app.types import AssetClass
from tests.support.ib_history import tws_thread
from tests.unit.live.session_builders import save_promoted, sim_bars, tiny_model

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
    with tws_thread(bars, lambda: datetime.now(UTC)) as port:
        config = tmp_path / "settings.toml"
        config.write_text(f'registry_dir = "{registry}"\n[ib]\nport = {port}\nclient_id = 31\n')
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
