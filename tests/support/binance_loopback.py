"""A loopback server speaking Binance spot REST (the parts ccxt's binance class calls to trade).

Endpoints: ``/api/v3/ping``, ``time``, ``exchangeInfo``, ``account``, ``order`` (POST / GET /
DELETE), ``openOrders``, ``myTrades``, ``ticker/24hr``, and the public tape ``aggTrades``
(``tape``: aggTrade rows by id, served up to ``tape_now_ms()`` when set, as a venue serves
only what has printed). Market orders fill at the price the test
sets (``set_price``); a resting STOP_LOSS triggers and a LIMIT fills when a later price crosses
it. Commission: 0.1% of the quote amount, charged in the quote asset (so base balances equal
positions). Resting orders do not lock balances (real Binance spot would: see docs/EXECUTION.md).

Faults for the next ``POST /api/v3/order`` (``faults`` list, one popped per request):
``lost`` (accepted and executed, then the connection drops: the response never arrives),
``503`` (refused before processing), ``429`` (rate limited, with Retry-After), ``partial`` (a
market order fills half now and the rest at the next price), ``disconnect_fill`` (half fills,
then the connection drops). ``get_faults`` does the same for GET requests (``503``, ``429``).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FEE_RATE = 0.001
NO_BALANCE = {"code": -2010, "msg": "Account has insufficient balance for requested action."}


def symbol_info(symbol: str, base: str, quote: str) -> dict:
    """One symbol of Binance's exchangeInfo (spot, 0.01 tick, 0.0001 lot, 5 USDT notional)."""
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": ["SPOT"],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01",
                "maxPrice": "1000000.00",
                "tickSize": "0.01",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00010",
                "maxQty": "9000.00",
                "stepSize": "0.00010",
            },
            {"filterType": "NOTIONAL", "minNotional": "5.00", "applyMinToMarket": True},
        ],
    }


class BinanceState:
    """The venue's books. Every mutation holds ``lock``."""

    def __init__(self, prices: dict[str, float], balances: dict[str, float]) -> None:
        self.lock = threading.RLock()
        self.prices = dict(prices)
        self.markets = {s: (s[:-4], s[-4:]) for s in prices}  # BTCUSDT -> (BTC, USDT)
        self.balances = dict(balances)
        self.orders: dict[int, dict] = {}
        self.created: list[str] = []  # client id of every order ever created (duplicates show)
        self.trades: list[dict] = []
        self.faults: list[str] = []
        self.get_faults: list[str] = []
        self.partial_rest: dict[int, float] = {}  # order id -> qty still to fill at next price
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self.now_ms = 1_735_689_600_000
        self.tape: dict[str, list[dict]] = {}  # symbol -> aggTrade rows ("a", "T", ...) by id
        self.tape_now_ms: Callable[[], int] | None = None
        self.tape_requests: list[dict[str, str]] = []
        # symbol -> klines rows in Binance's wire format, oldest first; rows whose open time is
        # after ``klines_now_ms()`` are not served (they have not happened yet)
        self.klines_rows: dict[str, list[list]] = {}
        self.klines_now_ms: Callable[[], int] | None = None

    # ------------------------------------------------------------------ test controls

    def set_price(self, symbol: str, price: float) -> None:
        with self.lock:
            self.prices[symbol] = price
            self.now_ms += 1000
            for oid, rest in list(self.partial_rest.items()):
                order = self.orders[oid]
                if order["symbol"] == symbol and order["status"] == "PARTIALLY_FILLED":
                    self._fill(order, rest, price)
                del self.partial_rest[oid]
            for order in list(self.orders.values()):
                if order["symbol"] != symbol or order["status"] not in ("NEW",):
                    continue
                stop = float(order.get("stopPrice") or 0)
                limit = float(order.get("price") or 0)
                if order["type"] == "STOP_LOSS":
                    hit = price <= stop if order["side"] == "SELL" else price >= stop
                    if hit:
                        self._fill(order, float(order["origQty"]), price)
                elif order["type"] == "LIMIT":
                    hit = price >= limit if order["side"] == "SELL" else price <= limit
                    if hit:
                        self._fill(order, float(order["origQty"]), limit)

    def cancel_outside(self, client_order_id: str) -> None:
        """An operator cancels an order in the venue's UI."""
        with self.lock:
            for order in self.orders.values():
                if order["clientOrderId"] == client_order_id and order["status"] == "NEW":
                    order["status"] = "CANCELED"

    def position(self, symbol: str) -> float:
        return self.balances.get(self.markets[symbol][0], 0.0)

    # ------------------------------------------------------------------ venue logic

    def _fill(self, order: dict, qty: float, price: float) -> None:
        base, quote = self.markets[order["symbol"]]
        sign = 1 if order["side"] == "BUY" else -1
        fee = qty * price * FEE_RATE
        self.balances[base] = self.balances.get(base, 0.0) + sign * qty
        self.balances[quote] = self.balances.get(quote, 0.0) - sign * qty * price - fee
        executed = float(order["executedQty"]) + qty
        order["executedQty"] = f"{executed:.8f}"
        order["cummulativeQuoteQty"] = f"{float(order['cummulativeQuoteQty']) + qty * price:.8f}"
        order["status"] = (
            "FILLED" if executed >= float(order["origQty"]) - 1e-12 else "PARTIALLY_FILLED"
        )
        self.now_ms += 1
        order["updateTime"] = self.now_ms
        self.trades.append(
            {
                "symbol": order["symbol"],
                "id": next(self._trade_ids),
                "orderId": order["orderId"],
                "orderListId": -1,
                "price": f"{price:.8f}",
                "qty": f"{qty:.8f}",
                "quoteQty": f"{qty * price:.8f}",
                "commission": f"{fee:.8f}",
                "commissionAsset": quote,
                "time": self.now_ms,
                "isBuyer": sign > 0,
                "isMaker": False,
                "isBestMatch": True,
            }
        )

    def new_order(self, q: dict[str, str], mode: str | None) -> tuple[int, dict]:
        symbol = q.get("symbol", "")
        if symbol not in self.prices:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        coid = q.get("newClientOrderId") or f"x-{next(self._ids)}"
        for o in self.orders.values():
            if o["clientOrderId"] == coid and o["status"] in ("NEW", "PARTIALLY_FILLED"):
                return 400, {"code": -2010, "msg": "Duplicate order sent."}
        qty = float(q["quantity"])
        price = self.prices[symbol]
        base, quote = self.markets[symbol]
        side, otype = q["side"], q["type"]
        if otype == "MARKET":
            if side == "BUY" and self.balances.get(quote, 0.0) < qty * price * (1 + FEE_RATE):
                return 400, {
                    "code": -2010,
                    "msg": "Account has insufficient balance for requested action.",
                }
            if side == "SELL" and self.balances.get(base, 0.0) < qty - 1e-12:
                return 400, {
                    "code": -2010,
                    "msg": "Account has insufficient balance for requested action.",
                }
        oid = next(self._ids)
        self.now_ms += 1
        order = {
            "symbol": symbol,
            "orderId": oid,
            "orderListId": -1,
            "clientOrderId": coid,
            "price": q.get("price", "0.00000000"),
            "origQty": f"{qty:.8f}",
            "executedQty": "0.00000000",
            "cummulativeQuoteQty": "0.00000000",
            "status": "NEW",
            "timeInForce": q.get("timeInForce", "GTC"),
            "type": otype,
            "side": side,
            "stopPrice": q.get("stopPrice", "0.00000000"),
            "time": self.now_ms,
            "updateTime": self.now_ms,
            "isWorking": True,
            "origQuoteOrderQty": "0.00000000",
        }
        self.orders[oid] = order
        self.created.append(coid)
        if otype == "MARKET":
            if mode in ("partial", "disconnect_fill"):
                half = float(f"{qty / 2:.4f}")
                self._fill(order, half, price)
                self.partial_rest[oid] = qty - half
            else:
                self._fill(order, qty, price)
        return 200, {**order, "transactTime": self.now_ms, "fills": []}

    def find(self, q: dict[str, str]) -> dict | None:
        if "orderId" in q:
            return self.orders.get(int(q["orderId"]))
        coid = q.get("origClientOrderId")
        hits = [o for o in self.orders.values() if o["clientOrderId"] == coid]
        return hits[-1] if hits else None

    def account(self) -> dict:
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "accountType": "SPOT",
            "updateTime": self.now_ms,
            "permissions": ["SPOT"],
            "balances": [
                {"asset": a, "free": f"{v:.8f}", "locked": "0.00000000"}
                for a, v in sorted(self.balances.items())
            ],
        }

    def my_trades(self, q: dict[str, str]) -> list[dict]:
        rows = [t for t in self.trades if t["symbol"] == q.get("symbol")]
        if "fromId" in q:
            rows = [t for t in rows if t["id"] >= int(q["fromId"])]
        elif "startTime" in q:
            rows = [t for t in rows if t["time"] >= int(q["startTime"])]
        return rows[: int(q.get("limit", 500))]

    def klines(self, q: dict[str, str]) -> list[list]:
        """``GET /api/v3/klines``: from ``startTime`` (else the latest ``limit``), forming bar
        included, as Binance answers."""
        now = self.klines_now_ms() if self.klines_now_ms else self.now_ms
        rows = [r for r in self.klines_rows.get(q.get("symbol", ""), []) if r[0] <= now]
        limit = int(q.get("limit", 500))
        if "startTime" in q:
            return [r for r in rows if r[0] >= int(q["startTime"])][:limit]
        return rows[-limit:]

    def agg_trades(self, q: dict[str, str]) -> list[dict]:
        """``GET /api/v3/aggTrades``: by ``fromId``, or in ``[startTime, endTime]`` (<= 1 h)."""
        self.tape_requests.append(q)
        rows = self.tape.get(q.get("symbol", ""), [])
        now = self.tape_now_ms() if self.tape_now_ms else None
        if "fromId" in q:
            if "startTime" in q:
                raise ValueError("Binance refuses fromId with startTime")
            rows = [t for t in rows if t["a"] >= int(q["fromId"])]
        else:
            lo, hi = int(q["startTime"]), int(q["endTime"])
            if hi - lo > 3_600_000:
                raise ValueError("Binance allows at most one hour per aggTrades window")
            rows = [t for t in rows if lo <= t["T"] <= hi]
        rows = [t for t in rows if now is None or t["T"] <= now]
        return rows[: int(q.get("limit", 500))]


def _handler(state: BinanceState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _drop(self) -> None:
            """The connection dies before the response (what a client sees as a disconnect)."""
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass

        def _query(self) -> dict[str, str]:
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                body = self.rfile.read(length).decode()
                q.update({k: v[0] for k, v in parse_qs(body).items()})
            return q

        def _route(self, method: str) -> None:
            path = urlsplit(self.path).path
            q = self._query()
            with state.lock:
                if method == "POST" and path == "/api/v3/order":
                    fault = state.faults.pop(0) if state.faults else None
                    if fault == "503":
                        return self._send(503, {"code": -1001, "msg": "Internal error; try again."})
                    if fault == "429":
                        return self._send(
                            429, {"code": -1003, "msg": "Too many requests."}, {"Retry-After": "0"}
                        )
                    status, body = state.new_order(q, fault)
                    if fault in ("lost", "disconnect_fill") and status == 200:
                        return self._drop()
                    return self._send(status, body)
                if (
                    method == "GET"
                    and state.get_faults
                    and path.startswith("/api/v3/")
                    and path not in ("/api/v3/exchangeInfo", "/api/v3/time")
                ):
                    fault = state.get_faults.pop(0)
                    if fault == "429":
                        return self._send(429, {"code": -1003, "msg": "Too many requests."})
                    return self._send(503, {"code": -1001, "msg": "Internal error; try again."})
                if path == "/api/v3/ping":
                    return self._send(200, {})
                if path == "/api/v3/time":
                    return self._send(200, {"serverTime": state.now_ms})
                if path == "/api/v3/exchangeInfo":
                    infos = [symbol_info(s, b, qu) for s, (b, qu) in state.markets.items()]
                    return self._send(
                        200,
                        {
                            "timezone": "UTC",
                            "serverTime": state.now_ms,
                            "rateLimits": [],
                            "symbols": infos,
                        },
                    )
                if path == "/api/v3/account":
                    return self._send(200, state.account())
                if path == "/api/v3/order":
                    order = state.find(q)
                    if order is None:
                        code, msg = (
                            (-2011, "Unknown order sent.")
                            if method == "DELETE"
                            else (-2013, "Order does not exist.")
                        )
                        return self._send(400, {"code": code, "msg": msg})
                    if method == "DELETE":
                        if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                            return self._send(400, {"code": -2011, "msg": "Unknown order sent."})
                        order["status"] = "CANCELED"
                    return self._send(200, order)
                if path == "/api/v3/openOrders":
                    sym = q.get("symbol")
                    rows = [
                        o
                        for o in state.orders.values()
                        if o["status"] in ("NEW", "PARTIALLY_FILLED")
                        and (sym is None or o["symbol"] == sym)
                    ]
                    return self._send(200, rows)
                if path == "/api/v3/myTrades":
                    return self._send(200, state.my_trades(q))
                if path == "/api/v3/klines":
                    return self._send(200, state.klines(q))
                if path == "/api/v3/aggTrades":
                    return self._send(200, state.agg_trades(q))
                if path == "/api/v3/ticker/24hr":
                    sym = q.get("symbol", "")
                    p = f"{state.prices.get(sym, 0.0):.8f}"
                    return self._send(
                        200,
                        {
                            "symbol": sym,
                            "lastPrice": p,
                            "bidPrice": p,
                            "askPrice": p,
                            "openTime": state.now_ms - 86_400_000,
                            "closeTime": state.now_ms,
                            "volume": "0",
                        },
                    )
            return self._send(404, {"code": -1, "msg": f"no route {method} {path}"})

        def do_GET(self) -> None:  # noqa: N802
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._route("DELETE")

    return Handler


@contextmanager
def binance_loopback(state: BinanceState) -> Iterator[str]:
    """Serve ``state`` on 127.0.0.1; yields the base URL (``http://127.0.0.1:PORT``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        time.sleep(0)
