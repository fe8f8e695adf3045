"""``python -m app live`` without --replay: the venue's closed bars, polled through ccxt's real
binance class from a loopback exchange whose clock is the wall clock. The worker warms the
features up from the venue's history, trades the newest closed bar, stops on --duration and
writes its summary; the feed stored every warm-up bar once, and the venue's public prints
(trade_print / block_trade events) polled beside the bars."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from app.cli.main import main
from app.live.live_feed import warmup_bars
from app.live.model import SignalModel
from app.live.window_spec import WindowSpec
from tests.integration.test_trade_prints_loopback import FIRST_MS, _agg_trades
from tests.support.binance_loopback import BinanceState, binance_loopback
from tests.unit.live.session_builders import save_promoted, sim_bars, tiny_model

BAR_MS = 300_000


def _klines(frame: pd.DataFrame, shift_ms: int) -> list[list]:
    ms = frame["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy() // 1_000_000
    return [
        [int(t + shift_ms), f"{o:.8f}", f"{h:.8f}", f"{lo:.8f}", f"{c:.8f}", f"{v:.8f}",
         int(t + shift_ms + BAR_MS - 1), "0", 1, "0", "0", "0"]
        for t, o, h, lo, c, v in zip(
            ms, frame["open"], frame["high"], frame["low"], frame["close"], frame["volume"],
            strict=True,
        )
    ]  # fmt: skip


@dataclass
class LoopbackVenue:
    """A binance loopback's state serving the simulated bars shifted so their last bar is the
    one forming now, and a tape of public prints from just after the warm-up's start; the
    promoted model trained on those bars and the settings file pointing at its registry."""

    state: BinanceState
    bars: dict[str, pd.DataFrame]
    forming: int  # ms: the bar that opened last is still forming
    config: Path
    model: SignalModel


def loopback_venue(tmp_path: Path) -> LoopbackVenue:
    bars, _ = sim_bars(days=3)
    now_ms = int(time.time() * 1000)
    forming = now_ms // BAR_MS * BAR_MS
    last = int(bars["BTCUSDT"]["ts"].astype("datetime64[ns, UTC]").astype("int64").iloc[-1])
    shift_ms = forming - last // 1_000_000
    state = BinanceState({s: float(f["close"].iloc[-1]) for s, f in bars.items()}, {})
    state.klines_rows = {s: _klines(f, shift_ms) for s, f in bars.items()}
    state.klines_now_ms = lambda: int(time.time() * 1000)
    model = tiny_model(bars)
    # public prints from just after the warm-up's start: the feed polls them (trade_size_dev,
    # block_trade_flag are crypto features of the model's spec)
    since_ms = forming - (warmup_bars(WindowSpec.from_bundle(model.bundle)) + 1) * BAR_MS
    tape = _agg_trades(1200)
    for row in tape:
        row["T"] += since_ms + 600_000 - FIRST_MS
    state.tape["BTCUSDT"] = tape
    state.tape_now_ms = lambda: int(time.time() * 1000)
    config = tmp_path / "settings.toml"
    registry = save_promoted(tmp_path / "registry", model)
    # a loopback venue: no request pacing (Binance's 50 ms per call would be most of the run)
    config.write_text(f'registry_dir = "{registry}"\n[ccxt]\nrate_limit_ms = 1\n')
    return LoopbackVenue(state, bars, forming, config, model)


def test_live_feed_warms_up_from_the_venue_and_trades_the_newest_bar(tmp_path, capsys) -> None:
    venue = loopback_venue(tmp_path)
    state, bars, forming, config = venue.state, venue.bars, venue.forming, venue.config
    out = tmp_path / "live"
    with binance_loopback(state) as base:
        argv = ["live", "--config", str(config), "--feed-url", f"{base}/api/v3"]
        argv += ["--duration", "2"]
        assert main([*argv, "--no-panel", "--port", "0", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["stopped"] == "duration" and summary["errors"] == []
    assert summary["bars"] >= 1 and summary["signals"] >= 2
    signals = pd.read_csv(out / "signals.csv", parse_dates=["ts"])
    newest_closed = datetime.fromtimestamp((forming - BAR_MS) / 1000, UTC)
    first = signals[signals["ts"] == signals["ts"].min()]
    assert first["ts"].iloc[0] >= pd.Timestamp(newest_closed) and set(first["ticker"]) == set(bars)
    stored = (
        duckdb.connect(str(out / "journal.db"), read_only=True)
        .execute("SELECT symbol, count(*), count(DISTINCT ts) FROM bars GROUP BY symbol")
        .fetchall()
    )
    assert {s for s, _, _ in stored} == set(bars)
    assert all(n == distinct and n > 100 for _, n, distinct in stored)  # warm-up, each bar once
    kinds = dict(
        duckdb.connect(str(out / "journal.db"), read_only=True)
        .execute("SELECT kind, count(*) FROM flow WHERE symbol = 'BTCUSDT' GROUP BY kind")
        .fetchall()
    )
    assert kinds.get("trade_print", 0) > 500 and kinds.get("block_trade", 0) > 0
