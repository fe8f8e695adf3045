"""The execution layer's way in: ``open_engine`` builds the ExecutionEngine of a venue.

- The engine takes ``RiskDecision``s only, tracks every order as an ``OrderRecord`` and stores
  each status change BEFORE the next venue call (``app.broker.journal``, flushed by
  ``app.broker.persisted.PersistedBroker``).
- Submit (``app.broker.order_flow``): retries only the network family (``VenueUnavailable``)
  with bounded backoff; after one, it asks the venue for the client id before any resend. An id
  whose outcome stays unknown puts the risk engine in REDUCING for that symbol until a later
  lookup resolves it. ``OrderRejected`` ends the order as REJECTED with the venue's words.
- Fills (``app.broker.fill_flow``) come from the venue (``fills_since`` with a stored cursor),
  are stored once per fill id and applied to the same ``Portfolio`` the backtester books on.
- Brackets: native when ``capabilities.native_brackets`` (legs ``<id>-sl``/``<id>-tp``), else the
  engine places both exits when the entry fills and cancels the sibling when one fills.
- Reconciliation (``app.broker.reconcile``) runs on ``start`` and every N minutes; no order is
  sent before the first one finished.

This is the only module that reaches a broker adapter (through ``app.broker.factory``); the
engine itself is ``app.broker.engine`` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from app.broker.engine import ExecutionEngine, ExecutionNotReady, utc_now
from app.broker.roles import FILL_REASON, LEGS, ROLE_OF_ACTION
from app.risk.engine import RiskEngine
from app.store.base import TimeSeriesStore
from app.types import AssetClass

__all__ = [
    "FILL_REASON",
    "LEGS",
    "ROLE_OF_ACTION",
    "ExecutionEngine",
    "ExecutionNotReady",
    "open_engine",
    "utc_now",
    "venue_status",
]


async def venue_status(
    venue: str, settings, env, *, testnet: bool = False, venue_url: str = ""
) -> dict:
    """Connect read-only and report connectivity, balances, open orders and positions.

    BrokerConnectError / MissingCredentials propagate for the CLI to turn into one line."""
    from app.broker.factory import make_broker

    broker = make_broker(venue, settings, env, testnet=testnet, venue_url=venue_url)
    try:
        await broker.connect()
        balances = await broker.balances()
        orders = await broker.open_orders(None)
        positions = await broker.positions()
    finally:
        await broker.close()
    return {
        "venue": venue,
        "connected": True,
        "balances": balances,
        "open_orders": [
            {
                "client_order_id": o.client_order_id,
                "symbol": o.symbol,
                "side": o.side.value,
                "qty": o.qty,
                "status": o.status.value,
                "type": o.type.value,
            }
            for o in orders
        ],
        "positions": {s: {"qty": p.qty, "avg_price": p.avg_price} for s, p in positions.items()},
    }


def open_engine(
    venue: str,
    settings,
    env,
    risk: RiskEngine,
    store: TimeSeriesStore,
    *,
    calendar: AssetClass,
    clock: Callable[[], datetime] = utc_now,
    live: bool = False,
    testnet: bool = False,
    venue_url: str = "",
    asset_classes=None,
    state_path=None,
    initial_cash: float | None = None,
    journal_log=None,
) -> ExecutionEngine:
    """The ExecutionEngine of ``venue`` (the live worker's way in: it never builds an adapter
    itself). Paper takes the replay's tickers, state file and cash (see ``make_broker``);
    ``journal_log`` puts the journal's write-ahead log there (app/broker/journal_log.py)."""
    from app.broker.factory import make_broker, require_live_allowed

    require_live_allowed(venue, live, env)
    broker = make_broker(
        venue, settings, env, testnet=testnet, venue_url=venue_url,
        asset_classes=asset_classes, state_path=state_path, initial_cash=initial_cash,
    )  # fmt: skip
    return ExecutionEngine(
        broker, risk, store, settings.execution, calendar=calendar,
        initial_cash=initial_cash, symbols=tuple(asset_classes or ()), clock=clock,
        journal_log=journal_log,
    )  # fmt: skip
