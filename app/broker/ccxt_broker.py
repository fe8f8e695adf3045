"""A ccxt venue (Binance spot by default), async: ccxt's wire format becomes domain types here.

- Keys come from the environment (``BINANCE_API_KEY`` / ``BINANCE_API_SECRET``); they are never
  logged and never appear in ``repr``.
- ``testnet`` turns on ccxt's sandbox mode; ``venue_url`` replaces the scheme and host of every
  endpoint in ``exchange.urls['api']`` (keeping each path), for testnets, proxies and tests.
- Errors: ccxt's network family (NetworkError: RequestTimeout, RateLimitExceeded,
  ExchangeNotAvailable, ...) -> ``VenueUnavailable``; InvalidOrder, InsufficientFunds and other
  refusals -> ``OrderRejected`` with the venue's message; OrderNotFound -> None.
- Client ids go out as Binance's ``newClientOrderId`` and are looked up by ``origClientOrderId``.
- Spot has no positions: a symbol's position is its base asset balance, marked at the last price.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async

from app.broker.errors import (
    BrokerConnectError,
    MissingCredentials,
    OrderRejected,
    VenueUnavailable,
)
from app.broker.protocol import FillsPage, MarketRules, VenueCapabilities, VenueOrder
from app.config import CcxtSettings
from app.types import Fill, Order, OrderStatus, OrderType, Position, Side

log = logging.getLogger(__name__)

KEY_VARS = ("BINANCE_API_KEY", "BINANCE_API_SECRET")
EXCHANGE_OPTIONS: dict[str, dict] = {
    "binance": {
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    }
}
_STATUS = {
    "open": OrderStatus.ACCEPTED,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}
_TYPE = {OrderType.MARKET: "market", OrderType.LIMIT: "limit", OrderType.STOP: "STOP_LOSS"}


def credentials_from_env(env: Mapping[str, str]) -> tuple[str, str]:
    missing = [v for v in KEY_VARS if not env.get(v)]
    if missing:
        raise MissingCredentials(f"set {' and '.join(missing)} for the binance venue")
    return env[KEY_VARS[0]], env[KEY_VARS[1]]


def override_urls(api: Mapping[str, object], base: str) -> dict[str, object]:
    """Every endpoint of ``urls['api']`` with its scheme and host replaced by ``base``'s."""
    parts = urlsplit(base)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"venue_url={base!r}: expected scheme://host[:port]")
    out: dict[str, object] = {}
    for key, url in api.items():
        if isinstance(url, str):
            u = urlsplit(url)
            out[key] = u._replace(scheme=parts.scheme, netloc=parts.netloc).geturl()
        else:
            out[key] = url
    return out


def _ms_dt(ms: float | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000.0, tz=UTC)


class CcxtBroker:
    """One ccxt account (spot). ``symbols`` are the store's names (``BTCUSDT``)."""

    capabilities = VenueCapabilities(native_brackets=False, oco_exits=False, shorting=False)

    def __init__(
        self,
        settings: CcxtSettings,
        symbols: Sequence[str],
        *,
        api_key: str,
        secret: str,
        testnet: bool = False,
        venue_url: str = "",
    ) -> None:
        exchange_class = getattr(ccxt_async, settings.exchange, None)
        if exchange_class is None or settings.exchange not in ccxt.exchanges:
            raise ValueError(f"ccxt exchange={settings.exchange!r} is not a ccxt exchange id")
        self.name = settings.exchange
        self.symbols = tuple(symbols)
        self.exchange = exchange_class(
            {
                "apiKey": api_key,
                "secret": secret,
                **settings.client_options(),
                "options": dict(EXCHANGE_OPTIONS.get(settings.exchange, {})),
            }
        )
        if testnet:
            self.exchange.set_sandbox_mode(True)
        if venue_url:
            self.exchange.urls["api"] = override_urls(self.exchange.urls["api"], venue_url)
        self.address = venue_url or str(self.exchange.urls["api"].get("public", ""))
        self._coid: dict[str, str] = {}  # venue order id -> client id

    def __repr__(self) -> str:  # never the keys
        return f"CcxtBroker(exchange={self.name!r}, symbols={self.symbols!r})"

    # ------------------------------------------------------------------ plumbing

    async def _call(self, method: str, *args: object, **kwargs: object):
        try:
            return await getattr(self.exchange, method)(*args, **kwargs)
        except ccxt.OrderNotFound:
            return None
        except ccxt.OperationFailed as exc:  # NetworkError family and -1001 "try again"
            retry_after = (
                self.exchange.rateLimit / 1000.0
                if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection)
                else None
            )
            raise VenueUnavailable(
                f"{self.name} {method}: {type(exc).__name__}: {exc}", retry_after_s=retry_after
            ) from exc
        except (
            ccxt.InvalidOrder,
            ccxt.InsufficientFunds,
            ccxt.BadRequest,
            ccxt.BadSymbol,
            ccxt.PermissionDenied,
            ccxt.AuthenticationError,
        ) as exc:
            raise OrderRejected(f"{self.name} {method}: {exc}") from exc

    def _market(self, symbol: str) -> str:
        """Store symbol -> ccxt unified symbol (``BTCUSDT`` -> ``BTC/USDT``)."""
        market = self.exchange.markets_by_id.get(symbol) if self.exchange.markets_by_id else None
        if not market:
            raise OrderRejected(f"{self.name}: unknown symbol {symbol!r}")
        return market[0]["symbol"]

    def _store_symbol(self, unified: str) -> str:
        return self.exchange.market(unified)["id"]

    def _venue_order(self, o: dict) -> VenueOrder:
        coid = o.get("clientOrderId") or ""
        if o.get("id"):
            self._coid[str(o["id"])] = coid
        filled = float(o.get("filled") or 0.0)
        status = _STATUS.get(o.get("status") or "open", OrderStatus.ACCEPTED)
        if status is OrderStatus.ACCEPTED and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        otype = {"limit": OrderType.LIMIT, "stop_loss": OrderType.STOP}.get(
            str(o.get("type") or "").lower(), OrderType.MARKET
        )
        if otype is OrderType.MARKET and o.get("triggerPrice"):
            otype = OrderType.STOP
        return VenueOrder(
            client_order_id=coid,
            symbol=self._store_symbol(o["symbol"]),
            side=Side.BUY if o.get("side") == "buy" else Side.SELL,
            qty=float(o.get("amount") or 0.0),
            status=status,
            filled_qty=filled,
            avg_fill_price=float(o["average"]) if o.get("average") else None,
            type=otype,
            limit_price=float(o["price"]) if otype is OrderType.LIMIT and o.get("price") else None,
            stop_price=float(o["triggerPrice"]) if o.get("triggerPrice") else None,
            venue_order_id=str(o.get("id") or ""),
            ts=_ms_dt(o.get("lastUpdateTimestamp") or o.get("timestamp")),
            message=str((o.get("info") or {}).get("msg", "")),
        )

    # ------------------------------------------------------------------ protocol

    async def connect(self) -> None:
        try:
            await self._call("load_markets")
        except VenueUnavailable as exc:
            raise BrokerConnectError(f"nothing answers at {self.address}: {exc}") from exc

    async def close(self) -> None:
        await self.exchange.close()

    async def submit(self, order: Order) -> VenueOrder:
        sym = self._market(order.symbol)
        params: dict[str, object] = {"newClientOrderId": order.client_order_id}
        price = order.limit_price
        if order.type is OrderType.STOP:
            params["triggerPrice"] = order.stop_price
        amount = float(self.exchange.amount_to_precision(sym, order.qty))
        if price is not None:
            price = float(self.exchange.price_to_precision(sym, price))
        o = await self._call(
            "create_order", sym, _TYPE[order.type], order.side.value.lower(), amount, price, params
        )
        return self._venue_order(o)

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        o = await self._call(
            "cancel_order", None, self._market(symbol), {"origClientOrderId": client_order_id}
        )
        return None if o is None else self._venue_order(o)

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        o = await self._call(
            "fetch_order", None, self._market(symbol), {"origClientOrderId": client_order_id}
        )
        return None if o is None else self._venue_order(o)

    async def open_orders(self, symbols: Sequence[str] | None = None) -> list[VenueOrder]:
        out: list[VenueOrder] = []
        for s in symbols or self.symbols:
            rows = await self._call("fetch_open_orders", self._market(s))
            out.extend(self._venue_order(o) for o in rows or [])
        return out

    async def fills_since(
        self, cursor: str | None, symbols: Sequence[str] | None = None
    ) -> FillsPage:
        """Cursor: JSON ``{symbol: next trade id}`` (Binance ``fromId``)."""
        after: dict[str, int] = json.loads(cursor) if cursor else {}
        fills: list[Fill] = []
        for s in symbols or self.symbols:
            sym = self._market(s)
            params = {"fromId": after[s]} if s in after else {}
            trades = await self._call("fetch_my_trades", sym, None, 1000, params) or []
            for t in trades:
                fills.append(await self._fill(t, s, sym))
                after[s] = max(after.get(s, 0), int(t["id"]) + 1)
        fills.sort(key=lambda f: (f.ts, f.fill_id))
        return FillsPage(tuple(fills), json.dumps(after, sort_keys=True))

    async def _fill(self, t: dict, symbol: str, unified: str) -> Fill:
        oid = str(t.get("order") or "")
        coid = self._coid.get(oid)
        if coid is None:  # an order we did not see in this process: ask for its client id
            o = await self._call("fetch_order", oid, unified)
            coid = (o or {}).get("clientOrderId") or f"venue-{oid}"
            self._coid[oid] = coid
        fee = t.get("fee") or {}
        return Fill(
            client_order_id=coid,
            symbol=symbol,
            side=Side.BUY if t["side"] == "buy" else Side.SELL,
            qty=float(t["amount"]),
            price=float(t["price"]),
            fee=float(fee.get("cost") or 0.0),
            ts=_ms_dt(t["timestamp"]) or datetime.now(UTC),
            reason="venue",
            fill_id=f"{symbol}-{t['id']}",
        )

    async def positions(self) -> dict[str, Position]:
        balances = await self.balances()
        out: dict[str, Position] = {}
        for s in self.symbols:
            market = self.exchange.market(self._market(s))
            qty = balances.get(market["base"], 0.0)
            if qty == 0.0:
                continue
            ticker = await self._call("fetch_ticker", market["symbol"])
            last = float((ticker or {}).get("last") or 0.0) or 1.0
            out[s] = Position(s, qty, last, datetime.now(UTC))
        return out

    async def balances(self) -> dict[str, float]:
        b = await self._call("fetch_balance")
        total = (b or {}).get("total") or {}
        return {k: float(v) for k, v in total.items() if v}

    async def market_rules(self, symbol: str) -> MarketRules:
        m = self.exchange.market(self._market(symbol))
        limits = m.get("limits") or {}
        precision = m.get("precision") or {}
        return MarketRules(
            symbol=symbol,
            qty_step=precision.get("amount"),
            price_step=precision.get("price"),
            min_qty=(limits.get("amount") or {}).get("min"),
            min_notional=(limits.get("cost") or {}).get("min"),
        )
