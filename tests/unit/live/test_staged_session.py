"""The graph's cut of a bar close (``StagedSession`` over ``RiskStage`` / ``ExecutionStage``,
plain classes, no Ray) decides and fills exactly as ``TradingSession`` on the same bars; the
risk stage's state file is written after every bar and read back on restart."""

from __future__ import annotations

import asyncio
import json

from app.broker.execution import ExecutionEngine
from app.broker.paper import PaperBroker
from app.clock import ReplayClock
from app.config import RiskSettings
from app.live.model import inference_threads
from app.live.series import SeriesReplay
from app.live.staged import StagedSession
from app.live.stages import ExecutionStage, RiskCommand, RiskStage
from app.store import DuckDBStore
from app.types import BAR_INTERVAL, AssetClass, RiskState
from tests.unit.live.session_builders import paper_session, sim_bars, tiny_model


class _Once:
    """The model, run once per bar for both sessions (the forward pass is the test's cost)."""

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        self.model, self.version, self.seen = model, model.version, {}

    def signals(self, ts, windows):  # type: ignore[no-untyped-def]
        if ts not in self.seen:
            self.seen[ts] = self.model.signals(ts, windows)
        return self.seen[ts]


def _staged(tmp_path, model, classes, clock):
    risk = RiskStage(RiskSettings(), tmp_path / "risk_state.json")
    broker = PaperBroker(classes, None, initial_cash=100_000.0, state_path=tmp_path / "p.json")
    store = DuckDBStore(tmp_path / "staged.db")
    engine = ExecutionEngine(
        broker, risk.engine, store, calendar=AssetClass.CRYPTO, initial_cash=100_000.0,
        symbols=tuple(classes), clock=clock.now,
    )  # fmt: skip
    stage = ExecutionStage(engine, RiskSettings(), fill_book=broker.pf)
    session = StagedSession(
        model=model, risk=risk, execution=stage, asset_classes=classes,
        calendar=AssetClass.CRYPTO, clock=clock,
    )  # fmt: skip
    return session, store, risk


def test_staged_session_equals_trading_session(tmp_path) -> None:
    bars, classes = sim_bars(days=1)
    model = tiny_model(bars)
    closes = list(SeriesReplay(bars, classes, model).closes())
    model = _Once(model)
    first = closes[0].ts
    plain_clock, staged_clock = ReplayClock(first), ReplayClock(first)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain, plain_store = paper_session(tmp_path / "a", model, classes, plain_clock)
    staged, staged_store, risk = _staged(tmp_path / "b", model, classes, staged_clock)

    async def go() -> None:
        await plain.start()
        await staged.start()
        for close in closes:
            plain_clock.advance_to(close.ts + BAR_INTERVAL)
            staged_clock.advance_to(close.ts + BAR_INTERVAL)
            a = await plain.on_bar_close(close)
            b = await staged.on_bar_close(close)
            assert a.decisions == b.decisions, close.ts
            assert a.fills == b.fills and a.equity == b.equity, close.ts
        await plain.stop()
        await staged.stop()

    with inference_threads(1):  # as the worker runs it
        asyncio.run(go())
    plain_store.close()
    staged_store.close()
    assert plain.records.orders == staged.records.orders > 5
    assert plain.fill_rows() == asyncio.run(staged.fill_rows())
    assert plain.records.equity == staged.records.equity
    saved = json.loads((tmp_path / "b" / "risk_state.json").read_text())
    assert saved == risk.engine.to_state()


def test_risk_stage_restores_its_state_after_a_command(tmp_path) -> None:
    path = tmp_path / "risk_state.json"
    stage = RiskStage(RiskSettings(), path)
    status = stage.command(RiskCommand("halt", reason="maintenance"))
    assert status.state is RiskState.HALTED
    again = RiskStage(RiskSettings(), path)
    assert again.engine.state is RiskState.HALTED
    assert again.engine.to_state() == stage.engine.to_state()
    assert status.engine(RiskSettings()).to_state() == stage.engine.to_state()
