"""MemoryLiveView: what the live worker records is what the API reads, on real parts
(a RiskEngine, a registry folder, the backtest's metric functions)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.backtest.metrics import compute_metrics
from app.clock import ReplayClock
from app.models.registry import promoted_version
from app.risk.engine import RiskEngine
from app.serve.events import EventKind
from app.serve.view import ClosedTrade, UnknownVersion
from app.types import (
    BAR_INTERVAL,
    AssetClass,
    Fill,
    Order,
    OrderStatus,
    Position,
    RiskState,
    Side,
)
from tests.builders import T0
from tests.unit.serve.serve_builders import (
    VERSIONS,
    api_settings,
    close_of,
    fresh_keys,
    live_view,
    signal_at,
    tiny_registry,
)


@pytest.fixture
def view(tmp_path: Path):
    settings = api_settings(tmp_path, fresh_keys(), feed_stale_s={"crypto": 600.0})
    tiny_registry(settings.registry_dir)
    return live_view(settings, ReplayClock(T0), initial_equity=1000.0)


def _order(i: int, symbol: str = "BTCUSDT", side: Side = Side.BUY) -> Order:
    return Order(f"{symbol}-{i}-L", symbol, side, 1.0, T0 + i * BAR_INTERVAL)


def test_portfolio_mark_computes_pnl_drawdown_and_exposure(view) -> None:
    pos = {
        "BTCUSDT": Position("BTCUSDT", 2.0, 100.0, T0),
        "ETHUSDT": Position("ETHUSDT", -1.0, 50.0, T0),
    }
    p = view.mark(T0, 950.0, 1000.0, pos, {"BTCUSDT": 110.0})
    assert p.day_pnl == -50.0 and p.day_drawdown == pytest.approx(0.05)
    btc, eth = p.positions
    assert (btc.market_value, btc.unrealized_pnl) == (220.0, 20.0)
    assert eth.last_price == 50.0  # no price: valued at its average price
    assert p.gross_exposure == pytest.approx(270.0 / 950.0)
    assert p.net_exposure == pytest.approx(170.0 / 950.0)
    assert view.portfolio() is p
    up = view.mark(T0 + BAR_INTERVAL, 1010.0, 1000.0, {}, {})
    assert up.day_drawdown == 0.0 and up.day_pnl == 10.0
    with pytest.raises(ValueError, match="before the last mark"):
        view.mark(T0, 1.0, 1000.0, {}, {})


def test_orders_newest_first_with_status_filter_and_updates(view) -> None:
    for i in range(5):
        view.record_order(_order(i), OrderStatus.SUBMITTED, T0 + i * BAR_INTERVAL)
    view.record_order(_order(1), OrderStatus.FILLED, T0 + close_of(6), 1.0, 101.0)
    ids = [o.client_order_id for o in view.orders(None, 10)]
    assert ids == [f"BTCUSDT-{i}-L" for i in (4, 3, 2, 1, 0)]  # creation order kept
    [filled] = view.orders(OrderStatus.FILLED, 10)
    assert filled.created_at == T0 + BAR_INTERVAL and filled.avg_fill_price == 101.0
    assert len(view.orders(OrderStatus.SUBMITTED, 2)) == 2


def test_fills_and_equity_since_are_inclusive_and_bounded(view) -> None:
    for i in (3, 1, 2):  # out of order: kept sorted by ts
        ts = T0 + i * BAR_INTERVAL
        view.record_fill(Fill(f"o{i}", "BTCUSDT", Side.BUY, 1.0, 100.0, 0.1, ts, fill_id=f"t{i}"))
    assert [f.fill_id for f in view.fills(None, 10)] == ["t1", "t2", "t3"]
    assert [f.fill_id for f in view.fills(T0 + 2 * BAR_INTERVAL, 10)] == ["t2", "t3"]
    assert [f.fill_id for f in view.fills(None, 1)] == ["t1"]
    for i in range(4):
        view.mark(T0 + i * BAR_INTERVAL, 1000.0 + i, 1000.0, {}, {})
    view.mark(T0 + 3 * BAR_INTERVAL, 999.0, 1000.0, {}, {})  # same instant: replaces
    points = view.equity(T0 + 2 * BAR_INTERVAL, 10)
    assert [p.equity for p in points] == [1002.0, 999.0]


def test_history_is_bounded(tmp_path: Path) -> None:
    settings = api_settings(tmp_path, fresh_keys())
    small = live_view(settings, ReplayClock(T0), max_history=3)
    for i in range(5):
        small.mark(T0 + i * BAR_INTERVAL, 1.0 + i, 1.0, {}, {})
        small.record_order(_order(i), OrderStatus.SUBMITTED, T0)
    assert [p.equity for p in small.equity(None, 10)] == [3.0, 4.0, 5.0]
    assert len(small.orders(None, 10)) == 3


def test_performance_uses_the_backtest_metrics(view) -> None:
    curve = [1000.0, 1010.0, 990.0, 1020.0, 1015.0]
    for i, e in enumerate(curve):
        view.mark(T0 + i * BAR_INTERVAL, e, 1000.0, {}, {})
    for pnl in (12.0, -3.0, 5.0):
        view.record_trade(
            ClosedTrade("BTCUSDT", Side.BUY, 1.0, T0, T0, 100.0, 100.0, pnl, 0.1, "exit")
        )
    expected = compute_metrics(
        np.asarray(curve),
        1000.0,
        AssetClass.CRYPTO,
        trades=pd.DataFrame({"exit_reason": ["exit"] * 3, "pnl": [12.0, -3.0, 5.0]}),
    )
    perf = view.performance()
    assert perf.sharpe == pytest.approx(expected["sharpe"])
    assert perf.max_drawdown == pytest.approx(expected["max_drawdown"])
    assert perf.total_return == pytest.approx(0.015) and perf.win_rate == pytest.approx(2 / 3)
    assert perf.n_trades == 3 and perf.bars == 5 and perf.final_equity == 1015.0
    assert view.performance() is perf  # cached until the curve or the trades change
    view.mark(T0 + 5 * BAR_INTERVAL, 1030.0, 1000.0, {}, {})
    assert view.performance().total_return == pytest.approx(0.03)


def test_empty_performance_has_no_undefined_numbers_as_nan(view) -> None:
    perf = view.performance()
    assert perf.bars == 0 and perf.sharpe is None and perf.win_rate is None
    assert perf.total_return == 0.0 and perf.max_drawdown == 0.0


def test_risk_commands_drive_the_real_engine_and_publish(tmp_path: Path) -> None:
    settings = api_settings(tmp_path, fresh_keys())
    saved: list[dict] = []
    engine = RiskEngine(settings.risk)
    view = live_view(settings, ReplayClock(T0), on_risk_change=lambda e: saved.append(e.to_state()))
    view.engine = engine

    async def run() -> None:
        sub = view.events.subscribe([EventKind.RISK])
        halted = await view.halt("operator test")
        assert halted.state is RiskState.HALTED and engine.state is RiskState.HALTED
        assert halted.reasons == ("halted:kill_switch:operator test",)
        assert (await sub.next()).payload == halted
        resumed = await view.resume()
        assert resumed.state is RiskState.ACTIVE and resumed.reasons == ()
        reducing = await view.set_reducing(True)
        assert reducing.state is RiskState.REDUCING and reducing.reasons == ("reducing:operator",)
        assert engine.state is RiskState.REDUCING

    asyncio.run(run())
    assert [s["kill_reason"] for s in saved] == ["operator test", None, None]
    assert saved[-1]["reducing"] is True
    assert view.risk().limits == settings.risk


def test_feeds_go_stale_and_mark_their_class_reducing(view) -> None:
    view.add_feed("replay-crypto", AssetClass.CRYPTO, ["BTCUSDT"])
    view.add_feed("replay-stocks", AssetClass.STOCKS)
    assert [f.status for f in view.feeds()] == ["waiting", "waiting"]
    clock: ReplayClock = view.clock  # type: ignore[assignment]
    view.feed_bar("replay-crypto", AssetClass.CRYPTO, "ETHUSDT", T0)
    clock.advance_to(T0 + close_of(0) + timedelta(seconds=600))
    crypto = view.feeds()[0]
    assert crypto.status == "ok" and crypto.lag_s == 600.0 and crypto.limit_s == 600.0
    assert crypto.symbols == ("BTCUSDT", "ETHUSDT") and crypto.last_bar_ts == T0
    clock.advance_to(clock.now() + timedelta(seconds=1))
    assert view.feeds()[0].status == "stale"
    risk = view.risk()
    assert risk.reducing_classes == (AssetClass.CRYPTO,)
    assert "reducing:feed_stale:crypto" in risk.reasons
    view.feed_bar("replay-crypto", AssetClass.CRYPTO, "BTCUSDT", T0 + 2 * BAR_INTERVAL)
    assert view.feeds()[0].status == "ok" and view.risk().reducing_classes == ()


def test_models_list_and_promote_on_a_real_registry(view) -> None:
    assert [m.version for m in view.models()] == list(VERSIONS)
    assert not any(m.promoted for m in view.models())

    async def run() -> None:
        sub = view.events.subscribe([EventKind.MODEL])
        first = await view.promote(VERSIONS[0])
        assert (first.previous, first.current) == ("", VERSIONS[0])
        second = await view.promote(VERSIONS[1])
        assert second.previous == VERSIONS[0]
        assert (await sub.next()).payload == first
        with pytest.raises(UnknownVersion):
            await view.promote("lstm-nope")

    asyncio.run(run())
    assert promoted_version(view.registry_dir) == VERSIONS[1]
    assert [m.promoted for m in view.models()] == [False, True]


def test_publish_signal_feeds_the_book_and_the_stream(view) -> None:
    async def run() -> None:
        sub = view.events.subscribe()
        signal, decision = signal_at(3)
        kept = view.publish_signal(signal, decision)
        assert kept is not None and view.signals.get("BTCUSDT") == kept
        event = await sub.next()
        assert event.kind is EventKind.SIGNAL and event.payload == kept
        assert kept.computed_at == T0  # the view's clock
        old, old_decision = signal_at(2)
        assert view.publish_signal(old, old_decision) is None and sub.pending() == 0
        await view.halt("x")  # a state change shows on the stream
        assert (await sub.next()).kind is EventKind.RISK

    asyncio.run(run())
