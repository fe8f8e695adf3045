"""Interactive Brokers (TWS / IB Gateway) through ib_async, behind the Broker protocol.

Stocks go to SMART in USD, forex to IDEALPRO (``app.sources.ib_source.contract_for``). An
order with exits goes out as IB's native bracket (``ib_orders``); every order carries our
client id in ``orderRef``, which is how ``fetch_order`` finds it after a timeout or a restart
(in this session's trades, then all open orders, then completed orders). Every request has a
deadline (ib_async's ``*Async`` calls wait forever otherwise): a missed one, or a request while
the link is down, is a ``VenueUnavailable``. ``IBConnectionKeeper`` keeps the link up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from ib_async import IB, Contract, ExecutionFilter, Trade

from app.broker.errors import BrokerConnectError, OrderRejected, VenueUnavailable
from app.broker.ib_connection import Backoff, IBConnectionKeeper
from app.broker.ib_mapping import (
    balances_from_account_values,
    fill_from_ib,
    market_rules_from_details,
    position_from_ib,
    venue_order_from_trade,
)
from app.broker.ib_orders import orders_for
from app.broker.protocol import FillsPage, MarketRules, VenueCapabilities, VenueOrder
from app.config import Asset, IBSettings
from app.errors import InputError
from app.sources.ib_source import contract_for
from app.types import AssetClass, Fill, Order, OrderStatus, Position

T = TypeVar("T")

CURSOR_FORMAT = "%Y%m%d-%H:%M:%S"  # ExecutionFilter.time, UTC
_WAITING = frozenset({"PendingSubmit", "ApiPending", "PendingCancel"})
IB_CAPABILITIES = VenueCapabilities(
    native_brackets=True,
    oco_exits=False,
    shorting=True,
    extra={"bracket": "ib.bracketOrder", "client_id_field": "orderRef"},
)


def asset_classes_of(universe: Sequence[Asset]) -> dict[str, AssetClass]:
    """Symbol -> asset class for the symbols IB trades (stocks, forex) in a universe."""
    tradable = (AssetClass.STOCKS, AssetClass.FOREX)
    return {a.symbol: a.asset_class for a in universe if a.asset_class in tradable}


class IBBroker:
    """One IB account; the ExecutionEngine is its only caller."""

    name = "ib"
    capabilities = IB_CAPABILITIES

    def __init__(
        self,
        settings: IBSettings,
        asset_classes: Mapping[str, AssetClass],
        *,
        ib: IB | None = None,
        client_id: int | None = None,
        connect_timeout: float = 4.0,
        request_timeout: float = 15.0,
        backoff: Backoff = Backoff(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.asset_classes = dict(asset_classes)
        self.ib = ib or IB()
        # the data source (IBSource) connects with settings.client_id; TWS wants one id per link
        self.client_id = settings.client_id + 1 if client_id is None else client_id
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.ib.RequestTimeout = request_timeout  # the blocking helpers, if anything uses them
        self._clock = clock
        self._rules: dict[str, MarketRules] = {}
        self.keeper = IBConnectionKeeper(self.ib, self._connect_once, backoff=backoff)

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    # ----------------------------------------------------------------- connection

    async def connect(self) -> None:
        if not self.ib.isConnected():
            await self.keeper.start()

    async def close(self) -> None:
        self.keeper.close()
        self.ib.disconnect()

    async def _connect_once(self) -> None:
        # ib_async logs a refused connection itself, in two lines; ours below says it in one.
        client_log = logging.getLogger("ib_async.client")
        level = client_log.level
        client_log.setLevel(logging.CRITICAL)
        try:
            await self.ib.connectAsync(
                self.settings.host,
                self.settings.port,
                clientId=self.client_id,
                timeout=self.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:  # refused, unreachable, no handshake in time
            self.ib.disconnect()
            why = type(exc).__name__ + (f": {exc}" if str(exc) else "")
            raise BrokerConnectError(
                f"IB at {self.address} (client id {self.client_id}) unreachable ({why}); "
                "is TWS or IB Gateway running with the API enabled on that port?"
            ) from exc
        finally:
            client_log.setLevel(level)

    async def _request(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """One request with a deadline; no link or no answer in time -> VenueUnavailable."""
        if not self.ib.isConnected():
            raise VenueUnavailable(f"IB at {self.address}: not connected ({what})")
        try:
            return await asyncio.wait_for(call(), self.request_timeout)
        except TimeoutError as exc:
            raise VenueUnavailable(
                f"IB at {self.address}: no answer to {what} within {self.request_timeout:g}s"
            ) from exc
        except ConnectionError as exc:
            raise VenueUnavailable(f"IB at {self.address}: connection lost ({what})") from exc

    def _contract(self, symbol: str) -> Contract:
        try:
            asset_class = self.asset_classes[symbol]
        except KeyError as exc:
            raise InputError(
                f"symbol={symbol!r}: not a stocks or forex symbol of the universe "
                f"(known: {sorted(self.asset_classes)})"
            ) from exc
        return contract_for(symbol, asset_class)

    # ----------------------------------------------------------------- orders

    async def submit(self, order: Order) -> VenueOrder:
        contract = self._contract(order.symbol)
        if not self.ib.isConnected():
            raise VenueUnavailable(f"IB at {self.address}: not connected (submit)")
        try:
            ib_orders = orders_for(self.ib, order)  # ids come from the live client
            trades = [self.ib.placeOrder(contract, o) for o in ib_orders]
        except ConnectionError as exc:  # the outcome is unknown: the engine looks the id up
            raise VenueUnavailable(f"IB at {self.address}: connection lost (submit)") from exc
        parent = trades[0]
        await self._await_change(parent, "submit")
        venue_order = venue_order_from_trade(parent)
        if venue_order.status is OrderStatus.REJECTED:
            raise OrderRejected(venue_order.message)
        return venue_order

    async def _await_change(self, trade: Trade, what: str) -> None:
        """Wait until IB has acknowledged ``trade`` (left the pending states), with a deadline."""
        changed = asyncio.Event()

        def on_status(_trade: Trade) -> None:
            changed.set()

        trade.statusEvent += on_status
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        try:
            while trade.orderStatus.status in _WAITING:
                changed.clear()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(changed.wait(), remaining)
        except TimeoutError as exc:
            raise VenueUnavailable(
                f"IB at {self.address}: no acknowledgement of {what} for "
                f"{trade.order.orderRef or trade.order.orderId} within {self.request_timeout:g}s"
            ) from exc
        finally:
            trade.statusEvent -= on_status

    def _known_trade(self, client_order_id: str, trades: Sequence[Trade]) -> Trade | None:
        found = [t for t in trades if t.order.orderRef == client_order_id]
        return found[-1] if found else None

    async def _find_trade(self, client_order_id: str) -> Trade | None:
        """This session's trades, then all open orders, then completed orders."""
        trade = self._known_trade(client_order_id, self.ib.trades())
        if trade is None:
            opened = await self._request("open orders", self.ib.reqAllOpenOrdersAsync)
            trade = self._known_trade(client_order_id, opened)
        if trade is None:
            done = await self._request(
                "completed orders", lambda: self.ib.reqCompletedOrdersAsync(apiOnly=False)
            )
            trade = self._known_trade(client_order_id, done)
        return trade

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        trade = await self._find_trade(client_order_id)
        return venue_order_from_trade(trade) if trade is not None else None

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        trade = await self._find_trade(client_order_id)
        if trade is None:
            return None
        if not trade.isDone():
            try:
                self.ib.cancelOrder(trade.order)
            except ConnectionError as exc:
                raise VenueUnavailable(f"IB at {self.address}: connection lost (cancel)") from exc
            await self._await_change(trade, "cancel")
        return venue_order_from_trade(trade)

    async def open_orders(self, symbols: Sequence[str] | None = None) -> list[VenueOrder]:
        trades = await self._request("open orders", self.ib.reqAllOpenOrdersAsync)
        orders = [venue_order_from_trade(t) for t in trades if not t.isDone()]
        return [o for o in orders if symbols is None or o.symbol in symbols]

    # ----------------------------------------------------------------- account

    async def fills_since(
        self, cursor: str | None, symbols: Sequence[str] | None = None
    ) -> FillsPage:
        """Executions at or after the cursor (a UTC second): a fill may repeat, none is missed.

        The engine is idempotent on ``fill_id`` (IB's execId). IB keeps executions for the
        current day (up to 7 with the TWS setting), so a longer outage is reconciled from
        positions. A commission IB has not reported yet comes as fee 0.
        """
        since = _cursor_time(cursor)
        found = await self._request(
            "executions", lambda: self.ib.reqExecutionsAsync(ExecutionFilter(time=cursor or ""))
        )
        # a repeated reqExecutions hands back fresh Fill objects with empty commission
        # reports; the report IB sent lands on the session's first Fill for that execId
        session = {f.execution.execId: f for f in self.ib.fills()}
        mapped = (fill_from_ib(session.get(f.execution.execId, f)) for f in found)
        fills: list[Fill] = sorted(mapped, key=lambda f: f.ts)
        fills = [
            f
            for f in fills
            if (since is None or f.ts >= since) and (symbols is None or f.symbol in symbols)
        ]
        last = max((f.ts for f in fills), default=since)
        return FillsPage(tuple(fills), last.strftime(CURSOR_FORMAT) if last else cursor)

    async def positions(self) -> dict[str, Position]:
        found = await self._request("positions", self.ib.reqPositionsAsync)
        now = self._clock()
        mapped = (position_from_ib(p, now) for p in found)
        return {p.symbol: p for p in mapped if p is not None}

    async def balances(self) -> dict[str, float]:
        values = await self._request("account summary", self.ib.accountSummaryAsync)
        return balances_from_account_values(values)

    async def market_rules(self, symbol: str) -> MarketRules:
        if symbol not in self._rules:
            contract = self._contract(symbol)
            details = await self._request(
                f"contract details of {symbol}", lambda: self.ib.reqContractDetailsAsync(contract)
            )
            if not details:
                raise InputError(f"symbol={symbol!r}: IB knows no contract {contract}")
            self._rules[symbol] = market_rules_from_details(
                symbol, self.asset_classes[symbol], details[0]
            )
        return self._rules[symbol]


def _cursor_time(cursor: str | None) -> datetime | None:
    if not cursor:
        return None
    try:
        return datetime.strptime(cursor, CURSOR_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InputError(f"cursor={cursor!r}: expected {CURSOR_FORMAT} (UTC)") from exc
