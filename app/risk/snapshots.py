"""The inputs of a risk decision: what the market and the portfolio look like right now.

Both are frozen and checked when built, cheaply, because the backtest builds one per bar.
The clock is ``MarketSnapshot.ts`` (or ``now`` in ``RiskEngine.on_mark``): the engine never
reads the wall clock, so a replay gives the same decisions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from app.types import AssetClass, InvalidField, Order, Position, require_utc


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """The market for one symbol at decision time (the close of the signal bar).

    ``atr`` may be NaN or <= 0 (warm-up); an ATR-based entry is then refused with a reason.
    ``reference_price`` (optional) is the price the signal was computed on; when set, an entry
    is refused if the last price moved more than ``price_band`` away from it.
    """

    symbol: str
    ts: datetime
    last_price: float
    atr: float
    asset_class: AssetClass
    reference_price: float | None = None

    def __post_init__(self) -> None:
        require_utc("MarketSnapshot", "ts", self.ts)
        if not 0.0 < self.last_price < math.inf:
            raise InvalidField(
                "MarketSnapshot", "last_price", self.last_price, "nonpositive", "must be finite > 0"
            )
        ref = self.reference_price
        if ref is not None and not 0.0 < ref < math.inf:
            raise InvalidField(
                "MarketSnapshot", "reference_price", ref, "nonpositive", "must be finite > 0"
            )


@dataclass(frozen=True, slots=True)
class PortfolioSnapshot:
    """The account as the caller marks it.

    ``day_open_equity`` is the equity at the start of the current trading day; the caller tracks
    it with :func:`app.risk.calendar.trading_day`. ``prices`` (optional) marks positions of other
    symbols for the gross-exposure cap; a position without a price is valued at its average price.
    """

    equity: float
    day_open_equity: float
    positions: Mapping[str, Position]
    open_orders: tuple[Order, ...] = ()
    prices: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if not -math.inf < self.equity < math.inf:
            raise InvalidField("PortfolioSnapshot", "equity", self.equity, "nan", "not finite")
        if not 0.0 < self.day_open_equity < math.inf:
            raise InvalidField(
                "PortfolioSnapshot",
                "day_open_equity",
                self.day_open_equity,
                "nonpositive",
                "must be finite > 0",
            )
