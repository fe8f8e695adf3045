"""Portfolio: positions, open orders with their stop-loss and take-profit, recent fills."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from app.types import OrderStatus
from ui.views.fmt import when

Json = dict[str, Any]

POSITION_COLUMNS = [
    "symbol",
    "qty",
    "avg_price",
    "last_price",
    "market_value",
    "unrealized_pnl",
    "stop_loss",
    "take_profit",
    "opened_at",
]
ORDER_COLUMNS = [
    "client_order_id",
    "symbol",
    "side",
    "qty",
    "type",
    "status",
    "filled_qty",
    "limit_price",
    "stop_loss",
    "take_profit",
    "reduce_only",
    "updated_at",
]
FILL_COLUMNS = ["ts", "symbol", "side", "qty", "price", "fee", "reason", "client_order_id"]
OPEN_STATUSES = frozenset(s.value for s in OrderStatus if not s.terminal)


def positions_frame(portfolio: Json) -> pd.DataFrame:
    rows = [{**p, "opened_at": when(p.get("opened_at"))} for p in portfolio.get("positions", [])]
    return pd.DataFrame(rows, columns=POSITION_COLUMNS)


def open_orders_frame(orders: Sequence[Json]) -> pd.DataFrame:
    """Orders not yet in a terminal state (UNKNOWN included: it is being looked up)."""
    rows = [
        {**o, "updated_at": when(o.get("updated_at"))}
        for o in orders
        if o.get("status") in OPEN_STATUSES
    ]
    return pd.DataFrame(rows, columns=ORDER_COLUMNS)


def fills_frame(fills: Sequence[Json], limit: int = 50) -> pd.DataFrame:
    """The newest ``limit`` fills, newest first (the API sends them oldest first)."""
    rows = [{**f, "ts": when(f.get("ts"))} for f in reversed(list(fills)[-limit:])]
    return pd.DataFrame(rows, columns=FILL_COLUMNS)
