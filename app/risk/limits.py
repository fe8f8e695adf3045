"""RiskSettings flattened into plain floats once, so the per-bar path does no lookups.

A pydantic model attribute read costs little, but the engine runs on every bar of a
million-bar backtest; precomputing the derived values (the drawdown floor, the gate's reason
text) keeps the common paths to a few comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.config import RiskSettings


def short_number(x: float) -> str:
    """``x`` with two decimals when that is exact (0.7 -> "0.70"), else up to six digits."""
    text = f"{x:.2f}"
    return text if float(text) == x else f"{x:.6g}"


@dataclass(frozen=True, slots=True)
class Limits:
    gate: float
    gate_text: str  # "0.70", as reason strings show it
    max_daily_drawdown: float
    drawdown_floor: float  # equity / day_open_equity below this halts
    stop_mode_atr: bool
    stop_loss_atr: float
    take_profit_atr: float
    stop_loss_pct: float
    take_profit_pct: float
    risk_per_trade: float
    size_floor: float
    max_position_notional: float
    max_gross_exposure: float
    max_open_positions: int
    max_orders_per_minute: int
    price_band: float

    @classmethod
    def from_settings(cls, s: RiskSettings) -> Limits:
        return cls(
            gate=s.confidence_gate,
            gate_text=short_number(s.confidence_gate),
            max_daily_drawdown=s.max_daily_drawdown,
            drawdown_floor=1.0 - s.max_daily_drawdown,
            stop_mode_atr=s.stop_mode == "atr",
            stop_loss_atr=s.stop_loss_atr,
            take_profit_atr=s.take_profit_atr,
            stop_loss_pct=s.stop_loss_pct,
            take_profit_pct=s.take_profit_pct,
            risk_per_trade=s.risk_per_trade,
            size_floor=s.size_floor,
            max_position_notional=s.max_position_notional,
            max_gross_exposure=s.max_gross_exposure,
            max_open_positions=s.max_open_positions,
            max_orders_per_minute=s.max_orders_per_minute,
            price_band=s.price_band,
        )
