"""``FeedActor`` on a venue (``FeedConfig.replay=None``) as a plain object, without Ray, against
the binance loopback exchange: the warm-up from the venue's klines with the trade prints polled
beside it, its own --duration timer after the warm-up, and a restart from the checkpoint the
feed held when its first bar close went out (as after a crash): the store's later bars are
replayed, the venue delivers none of them again, and the prints resume from their stored cursor."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import duckdb

from app.actors.feed_actor import FeedActor, FeedConfig
from app.config import load_settings
from app.live.venue_feeds import warmup_batch
from app.live.window_spec import WindowSpec
from tests.integration.test_live_venue_feed import BAR_MS, loopback_venue
from tests.support.binance_loopback import binance_loopback


class _Sink:
    """What the actor calls on the Serve handle (``on_close.remote``), kept in a list."""

    def __init__(self, on_close=None) -> None:  # type: ignore[no-untyped-def]
        self.closes: list = []
        self.on_close = SimpleNamespace(remote=self._take)
        self._then = on_close

    def _take(self, close) -> SimpleNamespace:  # type: ignore[no-untyped-def]
        self.closes.append(close)
        if self._then is not None:
            self._then(close)
        return SimpleNamespace(result=lambda: None)  # a delivered DeploymentResponse


def test_a_venue_feed_warms_up_trades_then_resumes_after_its_checkpoint(tmp_path) -> None:
    venue = loopback_venue(tmp_path)
    window = WindowSpec.from_bundle(venue.model.bundle)
    symbols = tuple(venue.bars)
    crashed = tmp_path / "checkpoints-at-the-first-close"

    def keep_checkpoint(close) -> None:  # type: ignore[no-untyped-def]  # what a crash leaves
        if not crashed.exists():
            shutil.copytree(tmp_path / "checkpoints", crashed)

    with binance_loopback(venue.state) as base:
        config = FeedConfig(
            "crypto", None, str(tmp_path / "checkpoints"), symbols=symbols,
            store_url=f"duckdb:///{tmp_path / 'bars.db'}",
            store_every=warmup_batch(window, symbols), settings=load_settings(venue.config),
            feed_url=f"{base}/api/v3", duration_s=0.2,
        )  # fmt: skip
        first_sink = _Sink(keep_checkpoint)
        first = FeedActor(config, window, None, first_sink)
        stats = first.run()
        first.worker.store.close()
        assert stats["stopped"] == "duration" and stats["ready"] and stats["errors"] == []
        assert stats["rejected"] == {} and stats["stored"] == stats["bars"] > 2 * 200
        prints = stats["side_polls"]["ccxt_trades:BTC/USDT"]
        assert prints["items_new"] > 500 and prints["failures"] == 0
        newest_closed = datetime.fromtimestamp((venue.forming - BAR_MS) / 1000, UTC)
        assert [c.ts for c in first_sink.closes] == [newest_closed]  # the warm-up's newest only

        # the process died after that close, its last 3 bars polled but not stored yet
        lost_from = newest_closed - 2 * (BAR_MS // 1000) * timedelta(seconds=1)
        with duckdb.connect(str(tmp_path / "bars.db")) as db:
            db.execute("DELETE FROM bars WHERE ts >= ?", [lost_from])
        again = FeedConfig(**{**vars(config), "checkpoint_dir": str(crashed)})
        sink = _Sink()
        second = FeedActor(again, window, None, sink)
        restored = [c.ts for c in sink.closes]  # the store's bars after the checkpoint
        assert restored and restored[-1] < lost_from and all(c.replayed for c in sink.closes)
        stats = second.run()
        second.worker.store.close()
    assert stats["restored_bars"] > 0 and stats["rejected"] == {}  # no stored bar came again
    assert stats["errors"] == [] and stats["starts"] == 1  # (a plain object: no Ray restart)
    assert [(c.ts, c.replayed) for c in sink.closes[len(restored) :]] == [(newest_closed, False)]
    prints = stats["side_polls"]["ccxt_trades:BTC/USDT"]
    assert prints["polls"] == 1 and prints["items_new"] == 0  # resumed from its stored cursor
    db = duckdb.connect(str(tmp_path / "bars.db"), read_only=True)
    for symbol in symbols:
        n, distinct, last = db.execute(
            "SELECT count(*), count(DISTINCT ts), max(ts) FROM bars WHERE symbol = ?", [symbol]
        ).fetchone()
        assert n == distinct > 200 and last == newest_closed
