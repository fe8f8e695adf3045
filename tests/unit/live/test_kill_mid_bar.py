"""The kill switch pressed while a bar close is being processed (after the mark, during the
model call: the API thread does not wait for the loop) answers that bar's signals with the
portfolio-wide FLATTEN_ALL; the API view keeps them, every position is closed, the run goes on."""

from __future__ import annotations

import asyncio

from app.clock import ReplayClock
from app.config import ApiSettings
from app.live.model import inference_threads
from app.live.series import SeriesReplay
from app.risk.engine import PORTFOLIO
from app.serve.memory import MemoryLiveView
from app.types import BAR_INTERVAL, DecisionAction, RiskState
from tests.unit.live.session_builders import paper_session, sim_bars, tiny_model


class KillsDuringCall:
    """The model, with the kill switch pressed inside one call (at the first held position)."""

    def __init__(self, model, risk, positions) -> None:  # noqa: ANN001
        self.model, self.risk, self.positions = model, risk, positions
        self.version = model.version
        self.killed_at = None

    def signals(self, ts, windows):  # noqa: ANN001, ANN201
        if self.killed_at is None and any(q != 0.0 for q in self.positions().values()):
            self.risk.kill("operator")
            self.killed_at = ts
        return self.model.signals(ts, windows)


def test_kill_between_mark_and_decide_flattens_and_is_published(tmp_path) -> None:
    bars, classes = sim_bars(days=2)
    model = tiny_model(bars)
    replay = SeriesReplay(bars, classes, model)
    clock = ReplayClock(min(f["ts"].iloc[0] for f in bars.values()).to_pydatetime())
    session, store = paper_session(tmp_path, model, classes, clock)
    view = MemoryLiveView(
        clock=clock, engine=session.risk, registry_dir=tmp_path / "registry", tickers=tuple(bars),
        api=ApiSettings(), initial_equity=100_000.0, calendar=classes["BTCUSDT"],
    )  # fmt: skip
    session.view = view
    pf = session.execution.pf
    wrapped = KillsDuringCall(model, session.risk, lambda: {s: pf.qty(s) for s in bars})
    session.model = wrapped

    async def go() -> list:
        await session.start()
        steps = []
        for close in replay.closes():
            clock.advance_to(close.ts + BAR_INTERVAL)
            steps.append(await session.on_bar_close(close))
        await session.stop()
        return steps

    with inference_threads(1):  # as the worker runs it
        steps = asyncio.run(go())
    store.close()
    assert wrapped.killed_at is not None, "the run never held a position"
    hit = next(s for s in steps if s.ts == wrapped.killed_at)
    flat = [d for d in hit.decisions if d.action is DecisionAction.FLATTEN_ALL]
    assert [d.symbol for d in flat] == [PORTFOLIO] and flat[0].orders
    assert flat[0].reasons == ("flatten:kill_switch",)
    published = {v.ticker: v for v in (s.view for s in view._signals.read_all())}
    assert set(published) == set(bars)  # later bars' signals still published (HOLD, halted)
    assert session.risk.state is RiskState.HALTED
    assert all(pf.qty(s) == 0.0 for s in bars)
    later = [d for s in steps if s.ts > wrapped.killed_at for d in s.decisions]
    assert later and all(not d.orders for d in later)
