"""``python -m app live --address local --venue paper`` without --replay, on the session's Ray
and Serve (``ray_serve``): the feed actor polls the binance loopback exchange (klines and the
public tape) through ccxt's real binance class, warms up, sends the newest closed bar to the
Serve graph, which trades it; the actor is killed once after that (``ray.kill(...,
no_restart=False)``) and comes back from its checkpoint and the store: no stored bar delivered
again, none lost; then SIGTERM stops the worker. The prints reached the store as trade_print /
block_trade events through the store actor."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest
import ray

from app.cli.main import main
from app.worker_serve import APP_NAME
from tests.integration.test_live_cli import _last_json
from tests.integration.test_live_venue_feed import BAR_MS, loopback_venue
from tests.support.binance_loopback import binance_loopback

pytestmark = [pytest.mark.timeout(300)]
KEY = "operate-key-of-the-serve-venue-test"


def test_live_on_ray_polls_the_venue_and_resumes_after_a_feed_crash(
    tmp_path, ray_serve, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("APP_API__KEYS", f'["{KEY}"]')
    venue = loopback_venue(tmp_path)
    port = int(ray_serve.rsplit(":", 1)[1])
    out = tmp_path / "live"
    killed: list[int] = []
    done = threading.Event()

    def kill_after_the_warm_up_then_stop() -> None:  # SIGTERM once the new actor is ready
        while not done.is_set():
            with contextlib.suppress(ValueError, ray.exceptions.RayActorError):  # not up yet
                feed = ray.get_actor(f"{APP_NAME}-feed-crypto")
                stats = ray.get(feed.stats.remote())
                if stats["ready"] and not killed:
                    killed.append(stats["bars"])
                    ray.kill(feed, no_restart=False)
                elif stats["ready"] and stats["starts"] == 2:
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
            done.wait(0.2)

    killer = threading.Thread(target=kill_after_the_warm_up_then_stop)
    killer.start()
    try:
        with binance_loopback(venue.state) as base:
            argv = ["live", "--config", str(venue.config), "--address", "local"]
            argv += ["--venue", "paper", "--feed-url", f"{base}/api/v3", "--duration", "120"]
            assert main([*argv, "--port", str(port), "--out", str(out)]) == 0
    finally:
        done.set()
        killer.join(timeout=30)
    summary = _last_json(capsys.readouterr().out)
    assert killed and killed[0] > 200, killed  # killed after the warm-up
    assert summary["stopped"] == "signal" and summary["errors"] == [], summary["errors"]
    feed = summary["feed"]
    assert feed["starts"] == 2 and feed["rejected"] == {}, feed  # no stored bar came again
    assert feed["restored_bars"] > 0  # the store's bars after the checkpoint
    # the restarted actor's pollers (no new bar since: not polled; the cursor's resume is
    # tests/integration/test_feed_actor_venue.py's)
    assert set(feed["side_polls"]) == {"ccxt_trades:BTC/USDT", "ccxt_trades:ETH/USDT"}
    assert summary["signals"] >= 2
    signals = pd.read_csv(out / "signals.csv", parse_dates=["ts"])
    newest_closed = pd.Timestamp(datetime.fromtimestamp((venue.forming - BAR_MS) / 1000, UTC))
    assert signals["ts"].min() >= newest_closed and set(signals["ticker"]) == set(venue.bars)
    db = duckdb.connect(str(out / "bars.db"), read_only=True)  # the store actor's file
    for symbol in venue.bars:
        ts = pd.to_datetime(
            [r[0] for r in db.execute("SELECT ts FROM bars WHERE symbol = ?", [symbol]).fetchall()],
            utc=True,
        ).sort_values()
        assert len(ts) > 200 and ts.is_unique  # the warm-up, each bar once
        assert (ts.to_series().diff().dropna() == pd.Timedelta(minutes=5)).all()  # none lost
        assert ts[-1] >= newest_closed
    kinds = dict(
        db.execute(
            "SELECT kind, count(*) FROM flow WHERE symbol = 'BTCUSDT' GROUP BY kind"
        ).fetchall()
    )
    assert kinds.get("trade_print", 0) > 500 and kinds.get("block_trade", 0) > 0
