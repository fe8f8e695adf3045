"""Small builders for risk-engine tests (risk-specific, so they live next to those tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.config import RiskSettings
from app.risk.engine import MarketSnapshot, PortfolioSnapshot, RiskEngine
from app.types import AssetClass, Order, Position, Side, Signal, SignalAction

NOON = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a Monday; inside one trading day everywhere


def engine(**overrides: object) -> RiskEngine:
    return RiskEngine(RiskSettings(**overrides))


def signal(
    ticker: str = "BTCUSDT",
    action: SignalAction = SignalAction.BUY,
    confidence: float = 0.85,
    ts: datetime = NOON,
) -> Signal:
    """A signal on the bar that opened 5 minutes before ``ts`` (decided at its close ``ts``)."""
    return Signal(ticker=ticker, ts=ts - timedelta(minutes=5), action=action, confidence=confidence)


def market(
    symbol: str = "BTCUSDT",
    ts: datetime = NOON,
    price: float = 100.0,
    atr: float = 1.0,
    asset_class: AssetClass = AssetClass.CRYPTO,
    reference_price: float | None = None,
) -> MarketSnapshot:
    return MarketSnapshot(symbol, ts, price, atr, asset_class, reference_price)


def position(symbol: str = "BTCUSDT", qty: float = 10.0, avg_price: float = 100.0) -> Position:
    return Position(
        symbol=symbol, qty=qty, avg_price=avg_price, opened_at=NOON - timedelta(hours=1)
    )


def portfolio(
    equity: float = 100_000.0,
    day_open_equity: float | None = None,
    positions: list[Position] | tuple[Position, ...] = (),
    open_orders: tuple[Order, ...] = (),
    prices: dict[str, float] | None = None,
) -> PortfolioSnapshot:
    return PortfolioSnapshot(
        equity=equity,
        day_open_equity=equity if day_open_equity is None else day_open_equity,
        positions={p.symbol: p for p in positions},
        open_orders=open_orders,
        prices=prices,
    )


def entry_order(
    symbol: str = "ETHUSDT",
    side: Side = Side.BUY,
    qty: float = 1.0,
    ts: datetime = NOON,
    client_order_id: str = "manual-1",
    **levels: float,
) -> Order:
    """A manual MARKET entry around price 100 with SL/TP on the right side unless overridden."""
    long = side is Side.BUY
    fields = {"stop_loss": 98.0 if long else 102.0, "take_profit": 104.0 if long else 96.0}
    fields.update(levels)
    return Order(client_order_id, symbol, side, qty, ts, **fields)
