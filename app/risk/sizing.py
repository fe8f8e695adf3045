"""Position size: a risk budget per trade, scaled by confidence, then capped.

Risk budget: losing ``risk_per_trade * equity`` when the stop is hit, so
``qty = risk_per_trade * equity * scale / stop_distance``. The scale grows linearly from
``size_floor`` at the confidence gate to 1.0 at confidence 1.0. The caps then apply in order:
per-position notional, then the room left under the gross exposure limit.
"""

from __future__ import annotations

from app.risk.limits import Limits


def confidence_scale(confidence: float, limits: Limits) -> float:
    """Size multiplier in [size_floor, 1]: size_floor at the gate, 1.0 at confidence 1."""
    span = 1.0 - limits.gate
    if span <= 0.0:
        return 1.0
    above = min(max((confidence - limits.gate) / span, 0.0), 1.0)
    return limits.size_floor + (1.0 - limits.size_floor) * above


def entry_quantity(
    *,
    equity: float,
    price: float,
    stop_distance: float,
    scale: float,
    gross_now: float,
    limits: Limits,
) -> tuple[float, tuple[str, ...]]:
    """``(qty, cap_reasons)``; qty <= 0 means no room (the engine refuses the entry).

    Guarantees ``qty * price <= max_position_notional * equity`` and
    ``gross_now + qty * price <= max_gross_exposure * equity`` up to float rounding.
    """
    qty = limits.risk_per_trade * equity * scale / stop_distance
    reasons: tuple[str, ...] = ()
    notional_cap = limits.max_position_notional * equity / price
    if qty > notional_cap:
        qty = notional_cap
        reasons += ("capped:max_position_notional",)
    gross_room = (limits.max_gross_exposure * equity - gross_now) / price
    if qty > gross_room:
        qty = gross_room
        reasons += ("capped:max_gross_exposure",)
    return qty, reasons
