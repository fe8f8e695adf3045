"""Public trade prints of a crypto market through ccxt ``fetch_trades``, paged by trade id.

The first page starts at ``since`` (Binance: ``aggTrades`` with ``startTime`` and a one-hour
``endTime``; an empty hour moves the window on); later pages continue with ``fromId`` = last id
+ 1, so no print is skipped or read twice. Polling stops when a page comes back short (caught
up) or after ``max_pages``; then the prints of the last millisecond are held back (more of that
millisecond may follow) and the next poll resumes from that millisecond. The ccxt client
keeps to the venue's rate limit (``enableRateLimit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ccxt

from app.errors import InputError
from app.sources import SourceUnavailable
from app.sources.ccxt_source import store_symbol
from app.sources.trade_prints import TradePrint

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class PrintPoll:
    """Prints read, and where the next poll starts (ms; the held-back millisecond)."""

    prints: tuple[TradePrint, ...]
    resume_ms: int
    pages: int


def ccxt_print(trade: Mapping[str, Any]) -> TradePrint:
    """A ccxt trade structure -> TradePrint (store symbol, aware UTC time)."""
    try:
        ms = int(trade["timestamp"])
        price, size = float(trade["price"]), float(trade["amount"])
        symbol = store_symbol(str(trade["symbol"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceUnavailable(f"ccxt trade without timestamp/price/amount: {trade!r}") from exc
    side = trade.get("side") or ""
    return TradePrint(symbol, datetime.fromtimestamp(ms / 1000, UTC), price, size, side)


def _fetch(exchange: Any, symbol: str, *args: Any) -> list[dict[str, Any]]:
    try:
        return list(exchange.fetch_trades(symbol, *args))
    except ccxt.BadSymbol as exc:
        raise InputError(f"{exchange.id} fetch_trades: unknown symbol {symbol!r} ({exc})") from exc
    except ccxt.BaseError as exc:  # network, rate limit, venue errors: try again later
        raise SourceUnavailable(f"{exchange.id} fetch_trades {symbol}: {exc}") from exc


def poll_trades(
    exchange: Any,
    symbol: str,
    *,
    since_ms: int,
    now_ms: int,
    limit: int = 1000,
    max_pages: int = 10,
) -> PrintPoll:
    """Prints of ``symbol`` (ccxt form, ``BTC/USDT``) from ``since_ms`` on."""
    trades: list[dict[str, Any]] = []
    cursor, pages, full = since_ms, 0, False
    last_id: int | None = None
    while pages < max_pages:
        pages += 1
        if last_id is None:
            page = _fetch(exchange, symbol, cursor, limit)
            if not page:
                cursor += HOUR_MS
                if cursor > now_ms:
                    break
                continue
            by_id = False
        else:
            page = _fetch(exchange, symbol, None, limit, {"fromId": last_id + 1})
            by_id = True
        trades.extend(page)
        full = len(page) >= limit
        if page:
            last_id = int(page[-1]["id"])
        if by_id and not full:  # a short window page only ends its hour: go on by id
            break
    prints = sorted((ccxt_print(t) for t in trades), key=lambda p: p.ts)
    resume = since_ms
    if prints:
        last = prints[-1].ts
        if full:  # the page may have cut that millisecond in two: read it whole next time
            prints = [p for p in prints if p.ts < last]
        resume = int(last.timestamp() * 1000) + (0 if full else 1)
    return PrintPoll(tuple(prints), resume, pages)
