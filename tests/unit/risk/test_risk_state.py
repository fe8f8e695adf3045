"""Risk state survives a restart: to_state -> JSON -> from_state, and bad state is refused."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from app.config import RiskSettings
from app.risk.engine import RiskEngine
from app.risk.order_guard import ID_MEMORY, OrderGuard
from app.types import AssetClass, RiskState
from tests.unit.risk.risk_helpers import NOON, engine, market, portfolio, signal


def restart(e: RiskEngine) -> RiskEngine:
    return RiskEngine.from_state(e.settings, json.loads(json.dumps(e.to_state())))


def test_halt_kill_reducing_and_order_memory_survive_a_restart() -> None:
    e = engine(max_orders_per_minute=2)
    assert e.decide(signal("A"), portfolio(), market("A")).approved
    e.set_reducing(True)
    e.kill("manual")
    e.on_mark(portfolio(90_000.0, 100_000.0), NOON, AssetClass.STOCKS)
    r = restart(e)
    assert r.state is RiskState.HALTED and r.halt_until == e.halt_until
    assert r.to_state() == e.to_state()
    r.resume()  # kill and REDUCING cleared, the drawdown halt stays until the next NY day
    assert r.state is RiskState.HALTED
    next_day = e.halt_until + timedelta(minutes=5)
    assert r.on_mark(portfolio(), next_day, AssetClass.STOCKS) is None
    assert r.state is RiskState.ACTIVE
    # the restored order memory still refuses the id issued before the restart
    again = r.decide(signal("A"), portfolio(), market("A"))
    assert again.reasons == ("duplicate_client_order_id:A-1736164800000-L",)


def test_restored_rate_window_still_counts() -> None:
    e = engine(max_orders_per_minute=1)
    assert e.decide(signal("A"), portfolio(), market("A")).approved
    later = NOON + timedelta(seconds=30)
    d = restart(e).decide(signal("B", ts=later), portfolio(), market("B", ts=later))
    assert d.reasons == ("rate_limited:1>=1/min",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, "unknown \\['extra'\\]"),
        ({"version": 99}, "version=99"),
        ({"halt_until": "2025-01-06T12:00:00"}, "halt_until"),
        ({"halt_until": "yesterday"}, "halt_until='yesterday'"),
        ({"reducing": "yes"}, "reducing='yes'"),
        ({"kill_reason": ""}, "kill_reason=''"),
        ({"order_times_ns": ["x"]}, "order_times_ns"),
    ],
)
def test_bad_state_is_refused_with_the_field_named(change: dict, message: str) -> None:
    state = {**engine().to_state(), **change}
    with pytest.raises(ValueError, match=message):
        RiskEngine.from_state(RiskSettings(), state)


def test_missing_key_is_named() -> None:
    state = engine().to_state()
    del state["halt_until"]
    with pytest.raises(ValueError, match="missing \\['halt_until'\\]"):
        RiskEngine.from_state(RiskSettings(), state)


def test_order_memory_is_bounded() -> None:
    guard = OrderGuard(max_per_minute=10)
    for i in range(ID_MEMORY + 10):
        guard.record(f"id{i}", i)
    assert not guard.seen("id0") and guard.seen(f"id{ID_MEMORY + 9}")
    assert len(guard.to_state()["recent_order_ids"]) == ID_MEMORY
    assert guard.recent_count(60 * 10**9 + 5) == ID_MEMORY + 10 - 6  # ns 0..5 left the minute
