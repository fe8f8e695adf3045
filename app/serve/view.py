"""What the API reads: the ``LiveView`` protocol and the frozen views it returns.

The API depends on this protocol only. :class:`app.serve.memory.MemoryLiveView` implements it in
memory (the live worker fills it, the tests use it); the Ray Serve ingress will implement the
same protocol over its deployments. Reads return what is in memory now; commands (risk, model
promotion) are coroutines because they may reach another process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from app.clock import Clock
from app.config import RiskSettings
from app.models.registry import VersionInfo
from app.serve.events import EventHub
from app.serve.state import SignalBook
from app.types import (
    AssetClass,
    Fill,
    OrderStatus,
    OrderType,
    Position,
    RiskState,
    Side,
    require_utc,
)

FeedStatus = Literal["ok", "stale", "waiting"]


class UnknownVersion(KeyError):  # noqa: N818 - reads better at the call site
    """A model version that the registry does not hold (complete)."""


class OtherAssetClass(ValueError):  # noqa: N818 - reads better at the call site
    """A model version trained for another asset class than the account trades."""


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    qty: float  # signed: long > 0, short < 0
    avg_price: float
    last_price: float
    market_value: float
    unrealized_pnl: float
    opened_at: datetime
    stop_loss: float | None = None
    take_profit: float | None = None


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """The account at its last mark (``ts`` None before the first bar closed)."""

    ts: datetime | None
    equity: float
    day_open_equity: float
    day_pnl: float
    day_drawdown: float  # max(0, 1 - equity / day_open_equity)
    gross_exposure: float  # sum |market value| / equity
    net_exposure: float  # sum market value / equity
    positions: tuple[PositionView, ...] = ()


def portfolio_view(
    ts: datetime,
    equity: float,
    day_open_equity: float,
    positions: Mapping[str, Position],
    prices: Mapping[str, float],
) -> PortfolioView:
    """The account marked at ``prices`` (a position without a price: at its average price)."""
    views = []
    for symbol in sorted(positions):
        p = positions[symbol]
        price = prices.get(symbol, p.avg_price)
        views.append(
            PositionView(
                symbol, p.qty, p.avg_price, price, p.market_value(price),
                p.unrealized_pnl(price), p.opened_at, p.stop_loss, p.take_profit,
            )
        )  # fmt: skip
    scale = 1.0 / equity if equity > 0 else math.nan  # exposure is undefined at equity <= 0
    return PortfolioView(
        ts=ts,
        equity=float(equity),
        day_open_equity=float(day_open_equity),
        day_pnl=float(equity - day_open_equity),
        day_drawdown=max(0.0, 1.0 - equity / day_open_equity),
        gross_exposure=sum(abs(v.market_value) for v in views) * scale,
        net_exposure=sum(v.market_value for v in views) * scale,
        positions=tuple(views),
    )


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order and where it is in its life (latest known state)."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    type: OrderType
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    filled_qty: float = 0.0
    avg_fill_price: float | None = None
    reduce_only: bool = False
    limit_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts: datetime  # open time of the bar at whose close the equity was marked
    equity: float

    def __post_init__(self) -> None:
        require_utc("EquityPoint", "ts", self.ts)


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A finished round trip, as the backtest logs it (``TRADE_COLUMNS``); feeds the win rate."""

    ticker: str
    side: Side
    qty: float
    entry_ts: datetime
    exit_ts: datetime
    entry_price: float
    exit_price: float
    pnl: float  # net of fees
    fees: float
    exit_reason: str


@dataclass(frozen=True, slots=True)
class PerformanceView:
    """Headline numbers of the live run, by ``app.backtest.metrics.compute_metrics``."""

    calendar: AssetClass
    bars: int
    initial_equity: float
    final_equity: float
    total_return: float | None
    sharpe: float | None
    max_drawdown: float | None
    win_rate: float | None
    n_trades: int


@dataclass(frozen=True, slots=True)
class RiskView:
    state: RiskState
    reasons: tuple[str, ...]
    limits: RiskSettings
    halt_until: datetime | None
    reducing_classes: tuple[AssetClass, ...] = ()  # asset classes whose feed is stale


@dataclass(frozen=True, slots=True)
class FeedView:
    source: str
    asset_class: AssetClass
    symbols: tuple[str, ...]
    last_bar_ts: datetime | None  # open time of the newest bar received
    lag_s: float | None  # seconds since that bar closed
    limit_s: float
    status: FeedStatus


@dataclass(frozen=True, slots=True)
class Promotion:
    previous: str  # "" when nothing was promoted before
    current: str


class LiveView(Protocol):
    """Everything the signal API serves. Reads are memory-only and fast."""

    @property
    def clock(self) -> Clock: ...

    @property
    def signals(self) -> SignalBook: ...

    @property
    def events(self) -> EventHub: ...

    def tickers(self) -> tuple[str, ...]:
        """The configured universe: a ticker outside it is unknown (404)."""
        ...

    def portfolio(self) -> PortfolioView: ...

    def orders(self, status: OrderStatus | None, limit: int) -> Sequence[OrderView]:
        """Newest first."""
        ...

    def fills(self, since: datetime | None, limit: int) -> Sequence[Fill]:
        """Fills with ``ts >= since``, oldest first, at most ``limit`` (the oldest ones)."""
        ...

    def equity(self, since: datetime | None, limit: int) -> Sequence[EquityPoint]: ...

    def performance(self) -> PerformanceView: ...

    def risk(self) -> RiskView: ...

    async def halt(self, reason: str) -> RiskView: ...

    async def resume(self) -> RiskView: ...

    async def set_reducing(self, on: bool) -> RiskView: ...

    def models(self) -> Sequence[VersionInfo]: ...

    async def promote(self, version: str) -> Promotion:
        """Raises :class:`UnknownVersion` for a version the registry does not hold and
        :class:`OtherAssetClass` for one trained for another asset class."""
        ...

    def feeds(self) -> Sequence[FeedView]: ...
