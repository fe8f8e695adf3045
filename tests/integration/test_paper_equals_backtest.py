"""Paper = backtest: the same bars and signals through the backtester, and through the live path
(ExecutionEngine + PaperBroker, the risk engine deciding on the engine's snapshot), give the
same decisions and the same fills, bit for bit (price, qty, fee, ts, side, reason)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from app.backtest.engine import BacktestConfig, default_calendar, run_backtest
from app.broker.execution import ExecutionEngine
from app.broker.paper import PaperBroker
from app.config import CostSettings, RiskSettings
from app.risk.engine import RiskEngine
from app.sim.config import SimConfig
from app.sim.market import SimulatedMarket
from app.store import DuckDBStore
from tests.support.replay import replay
from tests.unit.backtest.bt_fastpath_inputs import multi_ticker, random_signals


class Recorder(RiskEngine):
    """The backtest's risk engine, remembering every decision that carried orders."""

    def __init__(self, settings: RiskSettings) -> None:
        super().__init__(settings)
        self.approved: list = []

    def decide(self, signal, portfolio, market):  # type: ignore[override]
        d = super().decide(signal, portfolio, market)
        if d.orders:
            self.approved.append(d)
        return d

    def on_mark(self, portfolio, now, asset_class):  # type: ignore[override]
        d = super().on_mark(portfolio, now, asset_class)
        if d is not None and d.orders:
            self.approved.append(d)
        return d


def _compare(bars, signals, classes, config: BacktestConfig, tmp_path) -> pd.DataFrame:
    recorder = Recorder(config.risk)
    result = run_backtest(bars, signals, classes, config, engine=recorder)
    calendar = default_calendar(list(classes.values()))
    risk = RiskEngine(config.risk)
    store = DuckDBStore(tmp_path / "paper.db")
    broker = PaperBroker(
        classes,
        config.costs,
        initial_cash=config.initial_equity,
        state_path=tmp_path / "paper.json",
    )
    engine = ExecutionEngine(
        broker,
        risk,
        store,
        calendar=calendar,
        initial_cash=config.initial_equity,
        symbols=list(bars),
    )

    async def go():
        await engine.start()
        return await replay(engine, risk, bars, signals, classes, calendar)

    decided = asyncio.run(go())
    assert decided == recorder.approved  # the same decisions, orders and reasons included
    want = result.fills
    got = store.read("fills").sort_values("seq", kind="stable").reset_index(drop=True)
    assert len(want) > 20 and len(got) == len(want)
    assert got["ts"].tolist() == want["ts"].tolist()
    assert got["symbol"].tolist() == want["ticker"].tolist()
    assert got["side"].tolist() == ["BUY" if s > 0 else "SELL" for s in want["side"]]
    for col in ("qty", "price", "fee"):
        assert got[col].tolist() == want[col].tolist(), col  # exact, not approximate
    assert got["reason"].tolist() == want["reason"].tolist()
    assert engine.pf.cash == broker.pf.cash  # the engine's books equal the venue's
    store.close()
    return want


def test_paper_equals_backtest_on_simulator_bars(tmp_path) -> None:
    sim = SimulatedMarket(SimConfig.for_symbols(["BTCUSDT"], days=1, seed=3)).run()
    bars = {s: f[["ts", "open", "high", "low", "close", "volume"]] for s, f in sim.bars.items()}
    signals = random_signals(bars["BTCUSDT"], "BTCUSDT", seed=5, every=1)
    config = BacktestConfig(costs=CostSettings(slippage_mode="atr"))
    fills = _compare(bars, signals, sim.asset_classes, config, tmp_path)
    assert {"entry", "signal_close"} <= set(fills["reason"])
    assert {"stop_loss", "take_profit"} & set(fills["reason"])


@pytest.mark.parametrize("name", ["atr_slippage_tight_caps"])
def test_paper_equals_backtest_multi_ticker_with_halts(tmp_path, name) -> None:
    from tests.unit.backtest.bt_fastpath_inputs import CONFIGS, SYMBOLS

    bars, signals = multi_ticker(250)
    fills = _compare(bars, signals, SYMBOLS, CONFIGS[name], tmp_path)
    assert "stop_loss" in set(fills["reason"])
