"""Deterministic client order ids, and the "already pointing that way" HOLD of ``decide``:
small pure pieces the engine and its bulk callers (the backtester) share."""

from __future__ import annotations

from datetime import datetime

from app.types import to_ns

_ALREADY_LONG = ("already_long",)
_ALREADY_SHORT = ("already_short",)


def client_order_id(symbol: str, ts: datetime, kind: str) -> str:
    """Deterministic id: symbol, decision time in ms, kind (L/S entry, C close, F flatten)."""
    return order_id_ns(symbol, to_ns(ts), kind)


def order_id_ns(symbol: str, ts_ns: int, kind: str) -> str:
    return f"{symbol}-{ts_ns // 1_000_000}-{kind}"


def same_direction_hold(direction: int, held_qty: float) -> tuple[str, ...] | None:
    """Step 6 of ``decide`` for a signal in ``direction`` (+1 BUY, -1 SELL) on a position of
    signed ``held_qty`` (0 = none): the HOLD reasons when it already points that way, else None
    (no position: go on; an opposite one: CLOSE). A bulk caller that knows the position without
    a snapshot asks this after steps 1-5 (see ``certain_holds``); ``decide`` uses it too."""
    if held_qty == 0.0 or (held_qty > 0) != (direction > 0):
        return None
    return _ALREADY_LONG if held_qty > 0 else _ALREADY_SHORT
