from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.broker.order_state import IllegalTransition, OrderRecord, can_transition
from app.broker.precision import apply_rules
from app.broker.protocol import MarketRules
from app.types import Order, OrderStatus, Side

T = datetime(2025, 1, 1, tzinfo=UTC)
S = OrderStatus


def test_transitions_forward_only_and_terminal_is_final() -> None:
    assert can_transition(S.PENDING_SUBMIT, S.FILLED)
    assert can_transition(S.UNKNOWN, S.ACCEPTED)
    assert can_transition(S.PARTIALLY_FILLED, S.PARTIALLY_FILLED)
    assert not can_transition(S.FILLED, S.CANCELED)
    assert not can_transition(S.ACCEPTED, S.PENDING_SUBMIT)
    rec = OrderRecord(Order("a", "X", Side.BUY, 1.0, T)).moved(S.FILLED, T)
    with pytest.raises(IllegalTransition, match="FILLED -> ACCEPTED"):
        rec.moved(S.ACCEPTED, T)


def test_rules_round_the_safe_way_and_refuse_below_minimum() -> None:
    rules = MarketRules("X", qty_step=0.001, price_step=0.01, min_qty=0.001, min_notional=10.0)
    o = Order("a", "X", Side.BUY, 0.12399, T, stop_loss=95.123, take_profit=110.129)
    got, why = apply_rules(o, rules, 100.0)
    assert why is None
    assert (got.qty, got.stop_loss, got.take_profit) == (0.123, 95.13, 110.12)
    short = Order("b", "X", Side.SELL, 0.5, T, stop_loss=105.001, take_profit=90.009)
    got, _ = apply_rules(short, rules, 100.0)
    assert (got.stop_loss, got.take_profit) == (105.0, 90.01)
    _, why = apply_rules(Order("c", "X", Side.BUY, 0.05, T), rules, 100.0)
    assert why == "below_min_notional:5<10"
    _, why = apply_rules(Order("d", "X", Side.BUY, 0.0004, T), rules, 100.0)
    assert why and why.startswith("below_lot_step")
