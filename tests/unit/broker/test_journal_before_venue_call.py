"""The money-path rule with buffered journal writes: at every venue call the store already holds
every order state change and every fill the engine made (checked inside the venue's methods,
on a real paper venue and a real DuckDB journal), and a restart rebuilds the same orders."""

from __future__ import annotations

import asyncio

import pytest

from app.broker.execution import ExecutionEngine
from app.broker.paper import PaperBroker
from app.config import RiskSettings
from app.risk.engine import RiskEngine
from app.store import DuckDBStore
from app.types import AssetClass, DecisionAction, Order, RiskDecision, RiskState, Side
from tests.unit.broker.test_paper_state_log import SYMS, _bars


class CheckedPaper(PaperBroker):
    """The paper venue, asserting on entry of each call that nothing is left unstored."""

    engine: ExecutionEngine | None = None
    calls = 0

    def _check(self) -> None:
        e = self.engine
        if e is None or not e.ready:
            return
        type(self).calls += 1
        assert e.journal.pending == 0
        stored = e.journal.store.read("orders")
        got = dict(zip(stored["client_order_id"], stored["status"], strict=True))
        fill_ids = set(e.journal.store.read("fills")["fill_id"])
        if e.journal.log is not None:  # durable = the store, then the log's lines after it
            for line in e.journal.log.read():
                got.update({r["client_order_id"]: r["status"] for r in line.get("orders", [])})
                fill_ids.update(r["fill_id"] for r in line.get("fills", []))
        assert got == {k: r.status.value for k, r in e.orders.items()}
        assert len(fill_ids) == e.seq

    async def submit(self, order):  # noqa: ANN001, ANN201
        self._check()
        return await super().submit(order)

    async def fetch_order(self, client_order_id, symbol):  # noqa: ANN001, ANN201
        self._check()
        return await super().fetch_order(client_order_id, symbol)

    async def fills_since(self, cursor, symbols=None):  # noqa: ANN001, ANN201
        self._check()
        return await super().fills_since(cursor, symbols)

    async def on_bar(self, bar):  # noqa: ANN001, ANN201
        self._check()
        return await super().on_bar(bar)


def _engine(tmp_path, log: bool = False) -> ExecutionEngine:  # noqa: ANN001
    broker = CheckedPaper(SYMS, state_path=tmp_path / "paper.json")
    engine = ExecutionEngine(
        broker, RiskEngine(RiskSettings()), DuckDBStore(tmp_path / "journal.db"),
        calendar=AssetClass.CRYPTO, symbols=tuple(SYMS),
        journal_log=tmp_path / "journal.log" if log else None,
    )  # fmt: skip
    broker.engine = engine
    return engine


@pytest.mark.parametrize("log", [False, True], ids=["store", "write_ahead_log"])
def test_every_change_is_stored_before_the_next_venue_call(tmp_path, log) -> None:
    bars = _bars(60, seed=4)
    CheckedPaper.calls = 0

    async def run() -> ExecutionEngine:
        engine = _engine(tmp_path, log)
        await engine.start()
        for k, bar in enumerate(bars):
            await engine.on_bar(bar)
            if bar.symbol != "BTCUSDT" or (k // 2) % 5:
                continue
            held, ts, p = engine.pf.qty("BTCUSDT"), bar.ts, bar.close
            if held == 0.0:
                o = Order(
                    f"e{k}",
                    "BTCUSDT",
                    Side.BUY,
                    0.1,
                    ts,
                    stop_loss=p * 0.995,
                    take_profit=p * 1.005,
                )
                d = RiskDecision(ts, "BTCUSDT", DecisionAction.OPEN_LONG, RiskState.ACTIVE, (o,))
            else:
                o = Order(f"c{k}", "BTCUSDT", Side.SELL, held, ts, reduce_only=True)
                d = RiskDecision(ts, "BTCUSDT", DecisionAction.CLOSE, RiskState.ACTIVE, (o,))
            await engine.execute(d)
            if k < len(bars) - 7:  # with a log: the last bars' changes only in the log
                engine.flush()  # the bar close's end (TradingSession does this)
        if not log:
            await engine.stop()
        return engine  # with a log: a crash (no stop, no last sync)

    engine = asyncio.run(run())
    assert CheckedPaper.calls > 100 and engine.seq > 5
    statuses = {k: r.status for k, r in engine.orders.items()}
    if log:
        assert engine.journal.log.read()  # rows the store does not have yet
    engine.journal.store.close()
    again = _engine(tmp_path, log)
    asyncio.run(again.start())
    assert {k: r.status for k, r in again.orders.items()} == statuses
    assert again.pf.qty("BTCUSDT") == engine.pf.qty("BTCUSDT")
    if log:  # the log's rows went into the store at the restart, and the log is empty
        assert len(again.journal.store.read("fills")) == again.seq == engine.seq
        assert not again.journal.log.read()
    again.journal.store.close()
