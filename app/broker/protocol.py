"""The contract between the ExecutionEngine and a venue (paper, ccxt, Interactive Brokers).

Every method is a coroutine: ccxt's async client and ib_async are both asyncio. A broker converts
its venue's wire format to domain types at this edge and never decides anything: retries,
brackets it cannot place natively, idempotency and reconciliation belong to the engine.

Errors a broker raises (``app.broker.errors``):
- ``VenueUnavailable``: the network family (timeout, disconnect, 5xx, rate limit). The outcome of
  the call is unknown; for a submit the engine must look the client id up before sending again.
- ``OrderRejected``: the venue refused the order (invalid, insufficient funds); final, never
  retried. Its message is the venue's.
- ``BrokerConnectError``: nothing answers at the configured address (a refused connection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from app.types import Fill, Order, OrderStatus, OrderType, Position, Side, require_utc


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """What the venue says about one order, converted at the edge."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    status: OrderStatus
    filled_qty: float = 0.0
    avg_fill_price: float | None = None
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    venue_order_id: str = ""
    ts: datetime | None = None  # last update at the venue (UTC)
    message: str = ""  # the venue's words, e.g. a rejection reason

    def __post_init__(self) -> None:
        if self.ts is not None:
            require_utc("VenueOrder", "ts", self.ts)


@dataclass(frozen=True, slots=True)
class MarketRules:
    """A symbol's trading rules at the venue: steps and minimums for rounding the safe way."""

    symbol: str
    qty_step: float | None = None  # lot size / amount precision as a step
    price_step: float | None = None  # tick size
    min_qty: float | None = None
    min_notional: float | None = None


@dataclass(frozen=True, slots=True)
class VenueCapabilities:
    """Venue quirks as data (freqtrade's ``_ft_has``), not branches in the engine."""

    native_brackets: bool = False  # entry + SL + TP placed as one linked group (IB bracketOrder)
    oco_exits: bool = False  # SL and TP as one OCO after the entry fills
    shorting: bool = False  # a SELL without a position opens a short
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FillsPage:
    """Fills after a cursor, and the cursor to pass next time (opaque to the engine)."""

    fills: tuple[Fill, ...]
    cursor: str | None


@runtime_checkable
class Broker(Protocol):
    """One venue account. Only ``app.broker.execution.ExecutionEngine`` calls it."""

    name: str
    capabilities: VenueCapabilities

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, order: Order) -> VenueOrder:
        """Send ``order`` under its ``client_order_id``. With ``capabilities.native_brackets``
        an order carrying ``stop_loss``/``take_profit`` goes out as a bracket whose children
        carry the ids ``<client_order_id>-sl`` and ``<client_order_id>-tp``."""
        ...

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """Cancel by client id; None when the venue does not know the id."""
        ...

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """The venue's view of one order by client id; None when it never received it."""
        ...

    async def open_orders(self, symbols: Sequence[str] | None = None) -> list[VenueOrder]: ...

    async def fills_since(
        self, cursor: str | None, symbols: Sequence[str] | None = None
    ) -> FillsPage: ...

    async def positions(self) -> dict[str, Position]: ...

    async def balances(self) -> dict[str, float]:
        """Free + locked balance per asset / currency."""
        ...

    async def market_rules(self, symbol: str) -> MarketRules: ...
