"""Live = backtest, on the plain classes (no Ray): simulator bars replayed through the
TradingSession in paper mode give the signals of the batch pass over the same windows, and the
fills ``run_backtest`` gives on those signals and bars — (ts, price, qty, fee) exactly."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from app.backtest.engine import BacktestConfig, run_backtest
from app.clock import ReplayClock
from app.config import CostSettings
from app.live.model import inference_threads
from app.live.records import signals_frame
from app.live.series import SeriesReplay
from app.types import BAR_INTERVAL, DecisionAction
from tests.unit.live.session_builders import paper_session, sim_bars, tiny_model


def _replay(tmp_path, bars, classes, model, costs=None, **kw):
    replay = SeriesReplay(bars, classes, model)
    first = min(f["ts"].iloc[0] for f in bars.values()).to_pydatetime()
    clock = ReplayClock(first)
    session, store = paper_session(tmp_path, model, classes, clock, costs=costs, **kw)

    async def go():
        await session.start()
        for close in replay.closes():
            clock.advance_to(close.ts + BAR_INTERVAL)
            await session.on_bar_close(close)
        await session.stop()

    with inference_threads(1):  # as the worker runs it
        asyncio.run(go())
    store.close()
    return replay, session


@pytest.mark.parametrize("costs", [CostSettings(), CostSettings(slippage_mode="atr")])
def test_paper_replay_equals_backtest_of_its_signals(tmp_path, costs) -> None:
    bars, classes = sim_bars()
    model = tiny_model(bars)
    replay, session = _replay(tmp_path, bars, classes, model, costs)

    got = signals_frame(session.records)
    want = replay.predict_frame(model)
    assert len(got) == len(want) > 1000
    assert got["ts"].tolist() == want["ts"].tolist()
    assert got["ticker"].tolist() == want["ticker"].tolist()
    for col in ("p_up", "p_down", "p_flat", "confidence"):
        np.testing.assert_allclose(got[col], want[col], atol=1e-6)
    assert got["signal"].tolist() == want["signal"].tolist()
    assert set(got["model_version"]) == {model.version}

    config = BacktestConfig(costs=costs)
    result = run_backtest(bars, got[["ts", "ticker", "signal", "confidence"]], classes, config)
    live = pd.DataFrame(session.fill_rows(), columns=list(result.fills.columns))
    bt = result.fills
    assert len(bt) > 20 and len(live) == len(bt)
    assert pd.to_datetime(live["ts"], utc=True).tolist() == bt["ts"].tolist()
    assert live["ticker"].tolist() == bt["ticker"].tolist()
    for col in ("price", "qty", "fee", "side"):
        assert live[col].tolist() == bt[col].tolist(), col  # exact, not approximate
    assert set(bt["reason"]) & {"stop_loss", "take_profit"}
    # the engine's own books agree with the venue's, and so does the equity curve
    eq = [r.equity for r in session.records.equity]
    np.testing.assert_allclose(eq, result.equity["equity"].to_numpy(), rtol=0, atol=1e-6)
    assert session.records.fills and len(session.records.fills) == len(bt)


def test_stale_signal_opens_nothing(tmp_path) -> None:
    """With the clock running three bars ahead of the data every signal is stale: no entry,
    each decision a HOLD saying why."""
    bars, classes = sim_bars(days=2)
    model = tiny_model(bars)
    replay = SeriesReplay(bars, classes, model)
    clock = ReplayClock(min(f["ts"].iloc[0] for f in bars.values()).to_pydatetime())
    session, store = paper_session(tmp_path, model, classes, clock)

    async def go():
        await session.start()
        for close in replay.closes():
            clock.advance_to(close.ts + 4 * BAR_INTERVAL)
            await session.on_bar_close(close)

    with inference_threads(1):  # as the worker runs it
        asyncio.run(go())
    store.close()
    decisions = session.records.decisions
    assert len(decisions) > 500
    assert session.records.orders == 0 and not session.fill_rows()
    assert all(d.action is DecisionAction.HOLD for d in decisions)
    assert all(d.reasons[0].startswith("stale_signal:") for d in decisions)


def test_reducing_feed_opens_nothing_but_the_model_still_runs(tmp_path) -> None:
    bars, classes = sim_bars(days=2)
    model = tiny_model(bars)
    replay = SeriesReplay(bars, classes, model)
    clock = ReplayClock(min(f["ts"].iloc[0] for f in bars.values()).to_pydatetime())
    session, store = paper_session(tmp_path, model, classes, clock)
    session.reducing_classes.add(classes["BTCUSDT"])

    async def go():
        await session.start()
        for close in replay.closes():
            clock.advance_to(close.ts + BAR_INTERVAL)
            await session.on_bar_close(close)

    with inference_threads(1):  # as the worker runs it
        asyncio.run(go())
    store.close()
    assert session.records.orders == 0
    assert len(session.records.signals) == len(session.records.decisions) > 500
    assert {d.reasons for d in session.records.decisions} == {("reducing:feed_stale:crypto",)}


def test_bar_closes_must_move_forward(tmp_path) -> None:
    bars, classes = sim_bars(days=1)
    model = tiny_model(bars)
    replay = SeriesReplay(bars, classes, model)
    closes = list(replay.closes())
    clock = ReplayClock(closes[0].ts)
    session, store = paper_session(tmp_path, model, classes, clock)

    async def go():
        await session.start()
        await session.on_bar_close(closes[1])
        with pytest.raises(ValueError, match="not after the last one"):
            await session.on_bar_close(closes[0])

    with inference_threads(1):  # as the worker runs it
        asyncio.run(go())
    store.close()
