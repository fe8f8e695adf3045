"""5-minute OHLCV from any ccxt exchange (default Binance spot, public endpoints, no key).

``backfill`` pages ``fetch_ohlcv`` forward from ``since``; ``poll_closed`` resumes after the
store's last bar. Both return CLOSED bars only: a bar that opened at ``ts`` is closed when the
injected clock says ``now >= ts + 5 min``, so the forming bar never reaches the store.
ccxt paces requests itself (``enableRateLimit``); network failures are retried with bounded
exponential backoff. ccxt's rows (epoch ms) become the bar frame in :func:`ohlcv_to_frame`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import ccxt
import numpy as np
import pandas as pd

from app.config import CcxtSettings
from app.errors import InputError
from app.schema.bars import BAR_COLUMNS, empty_bars
from app.sources import SourceUnavailable
from app.types import require_utc

log = logging.getLogger(__name__)

TIMEFRAME = "5m"
BAR_MS = 5 * 60 * 1000
# Venue quirks as data: options applied when an exchange is built. Binance: load only spot
# markets (one public request) instead of also probing the futures and options APIs.
EXCHANGE_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}},
}

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def store_symbol(market_symbol: str) -> str:
    """``BTC/USDT`` -> ``BTCUSDT`` (``BTC/USDT:USDT`` -> ``BTCUSDT``): the store's naming."""
    return market_symbol.split(":", 1)[0].replace("/", "")


def ohlcv_to_frame(rows: Sequence[Sequence[float]], symbol: str) -> pd.DataFrame:
    """ccxt OHLCV rows ``[ms, open, high, low, close, volume]`` -> bar frame (ts ns UTC)."""
    if not rows:
        return empty_bars()
    array = np.asarray(rows, dtype="float64")
    if array.ndim != 2 or array.shape[1] < 6:
        raise InputError(f"ccxt OHLCV rows have shape {array.shape}: expected (n, 6)")
    ts = pd.to_datetime(array[:, 0].astype("int64"), unit="ms", utc=True)
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "ts": ts.astype("datetime64[ns, UTC]"),
            "open": array[:, 1],
            "high": array[:, 2],
            "low": array[:, 3],
            "close": array[:, 4],
            "volume": array[:, 5],
        }
    )
    return frame[list(BAR_COLUMNS)]


def _ms(ts: datetime) -> int:
    require_utc("CcxtSource", "ts", ts)
    return int(ts.timestamp() * 1000)


class CcxtSource:
    """Closed 5-minute bars of one ccxt exchange."""

    def __init__(
        self,
        exchange: ccxt.Exchange,
        *,
        clock: Clock = utc_now,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        page_limit: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if page_limit < 1:
            raise InputError(f"page_limit={page_limit}: must be >= 1")
        self.exchange = exchange
        self._clock = clock
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.page_limit = page_limit
        self._sleep = sleep

    @classmethod
    def from_settings(
        cls,
        settings: CcxtSettings,
        *,
        api_urls: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> CcxtSource:
        """Build the exchange named in settings; ``api_urls`` overrides ``urls['api']`` entries
        (a testnet, a proxy, or a loopback server in tests)."""
        exchange_class = getattr(ccxt, settings.exchange, None)
        if exchange_class is None or settings.exchange not in ccxt.exchanges:
            raise InputError(f"ccxt exchange={settings.exchange!r} is not a ccxt exchange id")
        exchange = exchange_class(
            {
                **settings.client_options(),
                "options": dict(EXCHANGE_OPTIONS.get(settings.exchange, {})),
            }
        )
        if api_urls:
            exchange.urls["api"] = {**exchange.urls["api"], **api_urls}
        kwargs.setdefault("max_retries", settings.max_retries)
        return cls(exchange, **kwargs)

    # ------------------------------------------------------------------ public API

    def backfill(self, symbol: str, since: datetime, until: datetime | None = None) -> pd.DataFrame:
        """Closed bars with ``since <= ts < until`` (``until`` defaults to now), oldest first."""
        self.require_market(symbol)
        now_ms = _ms(self._clock())
        end_ms = min(_ms(until), now_ms) if until is not None else now_ms
        cursor = -(-_ms(since) // BAR_MS) * BAR_MS  # first grid point at or after since
        rows: list[list[float]] = []
        while cursor < end_ms:
            page = self._call(
                f"fetch_ohlcv {symbol}",
                self.exchange.fetch_ohlcv,
                symbol,
                TIMEFRAME,
                since=cursor,
                limit=self.page_limit,
            )
            fresh = [r for r in page if r[0] >= cursor]
            if not fresh:
                break
            rows.extend(r for r in fresh if r[0] < end_ms and r[0] + BAR_MS <= now_ms)
            cursor = int(fresh[-1][0]) + BAR_MS
        log.info("ccxt %s %s: %d closed bars", self.exchange.id, symbol, len(rows))
        return ohlcv_to_frame(rows, store_symbol(symbol))

    def poll_closed(self, symbol: str, last_ts: datetime | None) -> pd.DataFrame:
        """Bars closed since the one stored at ``last_ts`` (the latest page when None)."""
        if last_ts is not None:
            return self.backfill(symbol, since=last_ts + pd.Timedelta(minutes=5))
        self.require_market(symbol)
        now_ms = _ms(self._clock())
        page = self._call(
            f"fetch_ohlcv {symbol}",
            self.exchange.fetch_ohlcv,
            symbol,
            TIMEFRAME,
            limit=self.page_limit,
        )
        return ohlcv_to_frame([r for r in page if r[0] + BAR_MS <= now_ms], store_symbol(symbol))

    def require_market(self, symbol: str) -> None:
        """InputError unless ``symbol`` (ccxt form, e.g. ``BTC/USDT``) is listed."""
        markets = self._call("load_markets", self.exchange.load_markets)
        if symbol not in markets:
            hint = [s for s in markets if store_symbol(s) == store_symbol(symbol)][:3]
            raise InputError(
                f"symbol={symbol!r} is not listed on {self.exchange.id}"
                + (f" (did you mean {hint}?)" if hint else " (ccxt symbols look like 'BTC/USDT')")
            )

    # ------------------------------------------------------------------ retries

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` retried with exponential backoff on transient failures.

        ccxt.OperationFailed is ccxt's "retry later" branch: NetworkError (timeouts, 5xx,
        DDoS protection, rate limits) plus venue codes such as Binance's -1001 "internal
        error". ExchangeError (bad symbol, bad request) is never retried.
        """
        for attempt in range(self.max_retries + 1):
            try:
                return fn(*args, **kwargs)
            except ccxt.BadSymbol as exc:
                raise InputError(f"{self.exchange.id} {what}: unknown symbol ({exc})") from exc
            except ccxt.OperationFailed as exc:  # NetworkError and venue "try again" errors
                if attempt == self.max_retries:
                    raise SourceUnavailable(
                        f"{self.exchange.id} {what} failed after {attempt + 1} attempts: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                delay = min(self.backoff_s * 2**attempt, self.max_backoff_s)
                log.warning(
                    "%s %s: %s (%s); retry %d/%d in %.2fs",
                    self.exchange.id,
                    what,
                    type(exc).__name__,
                    exc,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises
