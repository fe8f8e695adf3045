"""FeedWorker: rows equal the batch engine's, windows as the bundle wants, restart without gap."""

from __future__ import annotations

import numpy as np
import pytest

from app.errors import InputError
from app.live.items import ResumePoint
from app.live.replay import Replay
from app.live.window_spec import WindowSpec
from app.models.signals import signal_of
from app.pipeline.predict import feature_matrix, predict_inputs, predict_signals
from app.types import Bar, to_ns
from tests.unit.live.live_builders import (
    LOOKBACK,
    crypto_worker,
    replay_data,
    sim_folder,
    small_spec,
    tiny_bundle,
)
from tests.unit.text.sentiment_helpers import minilm


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return sim_folder(tmp_path_factory.mktemp("sim"))


@pytest.fixture(scope="module")
def data(sim):
    return replay_data(sim)


@pytest.fixture(scope="module")
def window():
    bundle = tiny_bundle(small_spec(), impact_dim=minilm().encoder.dim)
    return WindowSpec.from_bundle(bundle)


@pytest.fixture(scope="module")
def ref(tmp_path_factory, data, window):
    """One uninterrupted run over the whole replay: (worker, bar closes)."""
    worker = crypto_worker(tmp_path_factory.mktemp("ref"), data, window, minilm())
    closes = _run(worker, data)
    worker.close()
    return worker, closes


def _run(worker, data, resume=None, stop_after=None):
    closes = []
    for k, item in enumerate(Replay(data, "crypto").items(resume)):
        if stop_after is not None and k >= stop_after:
            break
        closes += worker.on_item(item)
    return closes


def test_rows_equal_the_batch_engine_with_news_impact(ref, data, window):
    worker, closes = ref
    inputs = predict_inputs(data, "crypto", minilm(), embeddings=True)
    assert inputs.news is not None and len(inputs.news) > 20
    for symbol in data.symbols("crypto"):
        ts, x = feature_matrix(window, inputs, symbol)
        got_ts = np.array([t for t, _ in worker.rows[symbol]])
        got = np.stack([r for _, r in worker.rows[symbol]])
        np.testing.assert_array_equal(got_ts, ts)
        np.testing.assert_allclose(got, x, rtol=1e-9, atol=1e-9, equal_nan=True)
        impact = got[:, -2:]
        assert np.count_nonzero(impact) > len(impact) // 2  # the ridge columns are live
    # one BarClose per bar time, each window the last LOOKBACK rows ending at its ts
    assert len(closes) == len(data.bars["BTCUSDT"])
    ready = [c for c in closes if "BTCUSDT" in c.windows]
    assert ready and all(c.windows["BTCUSDT"].shape == (LOOKBACK, len(window.feature_names))
                         for c in ready)  # fmt: skip
    last = ready[-1]
    np.testing.assert_array_equal(last.windows["BTCUSDT"][-1], worker.rows["BTCUSDT"][-1][1])
    assert not last.windows["BTCUSDT"].flags.writeable
    assert set(last.atr) == {"BTCUSDT", "ETHUSDT"} and last.atr["BTCUSDT"] > 0
    stats = worker.stats()
    assert stats.stored == 2 * len(data.bars["BTCUSDT"]) and stats.headline_batches > 5


def test_restore_resumes_without_gap_or_duplicate(tmp_path, data, window, ref):
    ref, _ = ref
    crashed = crypto_worker(tmp_path, data, window, minilm(), checkpoint_every=37, store_every=5)
    _run(crashed, data, stop_after=777)  # mid-replay, between checkpoints; no close()
    crashed.store.close()

    again = crypto_worker(tmp_path, data, window, minilm(), checkpoint_every=37, store_every=5)
    replayed = again.restore()
    assert replayed and all(c.replayed for c in replayed)
    resume = again.resume_point()
    assert resume.side_seen > 0
    _run(again, data, resume=resume)
    again.close()  # the shutdown path: its last bars are written
    for symbol in data.symbols("crypto"):
        want = dict(ref.rows[symbol])
        got = again.rows[symbol]
        assert got, symbol
        for ts, row in got:
            np.testing.assert_allclose(row, want[ts], rtol=1e-9, atol=1e-9, equal_nan=True)
        assert again.feature_state(symbol) == ref.feature_state(symbol)
        frame = again.store.read_bars(symbol)
        assert len(frame) == len(data.bars[symbol]) and frame["ts"].is_unique
    assert again.stats().restored_bars > 0


def test_a_crash_before_a_close_is_delivered_loses_no_close(tmp_path, data, window):
    """The bar that makes a checkpoint due also completes a close; a crash before the caller
    delivers it must leave that close to ``restore()`` (the checkpoint waits for the next bar)."""
    crashed = crypto_worker(tmp_path, data, window, None, checkpoint_every=2, store_every=1)
    undelivered = []
    for item in Replay(data, "crypto").items():
        undelivered = crashed.on_item(item)
        if undelivered and crashed.stats().bars >= 40:
            break  # the close of this bar never reaches the sink
    assert crashed.checkpoint_due and crashed.stats().checkpoints > 0
    crashed.store.close()

    again = crypto_worker(tmp_path, data, window, None, checkpoint_every=2, store_every=1)
    replayed = again.restore()
    assert [c.ts for c in undelivered] == [c.ts for c in replayed][-len(undelivered) :]
    assert replayed[-1].windows.keys() == undelivered[-1].windows.keys()


def test_bad_bars_are_rejected_and_counted(tmp_path, data, window):
    worker = crypto_worker(tmp_path, data, window, None)
    bars = [i for i in Replay(data, "crypto").items() if isinstance(i, Bar)][:4]
    for b in bars:
        worker.on_bar(b)
    assert [b.symbol for b in bars] == ["BTCUSDT", "ETHUSDT"] * 2
    worker.on_bar(bars[2])  # the last BTCUSDT bar again
    worker.on_bar(bars[0])  # an earlier one
    worker.on_bar(Bar("XRPUSDT", bars[0].ts, 1, 1, 1, 1, 1))
    assert worker.stats().rejected == {
        "BTCUSDT": {"duplicate": 1, "out_of_order": 1},
        "XRPUSDT": {"unknown_symbol": 1},
    }
    assert worker.stats().bars == 4


def test_resume_point_skips_seen_items(data):
    replay = Replay(data, "crypto")
    items = list(replay.items())
    bars = [i for i in items if isinstance(i, Bar)]
    cut = bars[100]
    resume = ResumePoint({"BTCUSDT": cut.ts_ns, "ETHUSDT": cut.ts_ns}, side_seen=7)
    rest = list(replay.items(resume))
    assert [i for i in rest if isinstance(i, Bar)][0].ts_ns > cut.ts_ns
    assert len([i for i in rest if not isinstance(i, Bar)]) == len(replay.side_items) - 7


def test_bundle_without_impact_spec_is_an_explicit_error():
    bundle = tiny_bundle(small_spec(), impact_dim=8)
    bundle.feature_spec = {k: v for k, v in bundle.feature_spec.items() if k != "news_impact"}
    with pytest.raises(InputError, match="news_impact"):
        WindowSpec.from_bundle(bundle)
    bundle = tiny_bundle(small_spec())
    bundle.feature_names = bundle.feature_names[::-1]
    with pytest.raises(InputError, match="feature spec"):
        WindowSpec.from_bundle(bundle)


def test_predict_equals_the_feed_windows_through_the_bundle(ref, data):
    """Half of "live = backtest": ``predict`` over the series gives, bar by bar, the
    probabilities of the feed's windows through ``bundle.predict_proba`` (to 1e-6)."""
    worker, closes = ref
    bundle = tiny_bundle(small_spec(), impact_dim=minilm().encoder.dim)
    inputs = predict_inputs(data, "crypto", minilm(), embeddings=True)
    result = predict_signals(bundle, inputs, model_version="v-test")
    by_key = {(r.ts.value, r.ticker): r for r in result.signals.itertuples(index=False)}
    live = [(c.ts, s, w) for c in closes for s, w in c.windows.items()]
    assert len(live) == len(result.signals) > 900
    probs = bundle.predict_proba(np.stack([w for _, _, w in live]))
    for (ts, symbol, _), p in zip(live, probs, strict=True):
        row = by_key[(to_ns(ts), symbol)]
        np.testing.assert_allclose([row.p_up, row.p_down, row.p_flat], p, atol=1e-6)
        action, confidence = signal_of(p)
        assert row.signal == action.value and abs(row.confidence - confidence) < 1e-6
    assert set(result.signals["signal"]) <= {"BUY", "SELL", "HOLD"}
