"""5-minute bars from Interactive Brokers (TWS / IB Gateway) through ib_async.

History comes from ``reqHistoricalDataAsync`` with ``barSizeSetting='5 mins'`` and
``formatDate=2`` (epoch seconds, so every bar is UTC); live bars from the same request with
``keepUpToDate=True``, where IB keeps updating the last, still-forming bar: a bar is passed on
only once the next one has started. Stocks use TRADES on SMART/USD; forex uses MIDPOINT on
IDEALPRO (volume is not defined there: IB sends -1, stored as 0). ``ib_async.BarData``
becomes a :class:`~app.types.Bar` (or a bar-frame row) here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
from ib_async import IB, BarData, BarDataList, Contract, Forex, Stock

from app.config import IBSettings
from app.errors import InputError
from app.schema.bars import BAR_COLUMNS, empty_bars
from app.sources import SourceUnavailable
from app.types import BAR_INTERVAL, AssetClass, Bar, InvalidField

BAR_SIZE = "5 mins"


@dataclass(frozen=True, slots=True)
class IBFeed:
    """What to request for one asset class (venue quirks as data)."""

    what_to_show: str
    use_rth: bool  # regular trading hours only
    has_volume: bool


FEEDS: dict[AssetClass, IBFeed] = {
    AssetClass.STOCKS: IBFeed(what_to_show="TRADES", use_rth=True, has_volume=True),
    AssetClass.FOREX: IBFeed(what_to_show="MIDPOINT", use_rth=False, has_volume=False),
}


def feed_for(asset_class: AssetClass) -> IBFeed:
    try:
        return FEEDS[AssetClass(asset_class)]
    except (KeyError, ValueError) as exc:
        raise InputError(
            f"asset_class={asset_class!r}: the IB source serves stocks and forex "
            "(use the ccxt source for crypto)"
        ) from exc


def contract_for(symbol: str, asset_class: AssetClass) -> Contract:
    """``AAPL`` -> Stock on SMART in USD; ``EURUSD`` -> Forex on IDEALPRO."""
    feed_for(asset_class)
    if AssetClass(asset_class) is AssetClass.FOREX:
        pair = symbol.replace("/", "").replace(".", "").upper()
        if len(pair) != 6 or not pair.isalpha():
            raise InputError(f"symbol={symbol!r}: a forex pair looks like EURUSD")
        return Forex(pair)
    return Stock(symbol, "SMART", "USD")


def _utc(value: datetime | date, symbol: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidField(
            "BarData", "date", value, "bad_timestamp", f"{symbol}: a daily date, not a 5-minute bar"
        )
    if value.tzinfo is None:
        raise InvalidField(
            "BarData", "date", value, "bad_timestamp", f"{symbol}: naive time (use formatDate=2)"
        )
    return value.astimezone(UTC)


def _volume(bar: BarData, has_volume: bool) -> float:
    volume = float(bar.volume)
    return 0.0 if not has_volume and volume < 0 else volume  # IB's -1 = "not available"


def bar_from_ib(bar: BarData, symbol: str, *, has_volume: bool = True) -> Bar:
    """One ``ib_async.BarData`` -> Bar (checks every invariant; raises InvalidField)."""
    return Bar(
        symbol=symbol,
        ts=_utc(bar.date, symbol),
        open=float(bar.open),
        high=float(bar.high),
        low=float(bar.low),
        close=float(bar.close),
        volume=_volume(bar, has_volume),
    )


def ib_bars_to_frame(
    bars: Sequence[BarData], symbol: str, *, has_volume: bool = True
) -> pd.DataFrame:
    """BarData list -> bar frame for ``validate_bars`` (bad rows are rejected there)."""
    if not bars:
        return empty_bars()
    stamps = [b.date if isinstance(b.date, datetime) else None for b in bars]
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "ts": pd.to_datetime(stamps, utc=True).astype("datetime64[ns, UTC]"),
            "open": [float(b.open) for b in bars],
            "high": [float(b.high) for b in bars],
            "low": [float(b.low) for b in bars],
            "close": [float(b.close) for b in bars],
            "volume": [_volume(b, has_volume) for b in bars],
        }
    )
    return frame[list(BAR_COLUMNS)]


def forming(bar: BarData, now: datetime) -> bool:
    """True for a bar whose 5 minutes are not over at ``now`` (a bad date is left to validation)."""
    stamp = bar.date
    return isinstance(stamp, datetime) and stamp.tzinfo is not None and stamp + BAR_INTERVAL > now


class ClosedBarRelay:
    """Turns keepUpToDate updates into closed bars.

    IB re-sends the forming bar as it changes; when a bar with a later time arrives
    (``hasNewBar``), the one before it is final. Connect it with
    ``bars.updateEvent.connect(relay, keep_ref=True)``: eventkit holds plain ``+=`` listeners
    weakly, so an otherwise unreferenced relay would be collected and go silent.
    """

    def __init__(self, symbol: str, emit: Callable[[Bar], None], *, has_volume: bool) -> None:
        self.symbol = symbol
        self._emit = emit
        self._has_volume = has_volume

    def __call__(self, bars: BarDataList, has_new_bar: bool) -> None:
        if has_new_bar and len(bars) >= 2:
            self._emit(bar_from_ib(bars[-2], self.symbol, has_volume=self._has_volume))


class IBSource:
    """Historical and live 5-minute bars for stocks and forex from TWS / IB Gateway."""

    def __init__(
        self,
        settings: IBSettings,
        *,
        ib: IB | None = None,
        connect_timeout: float = 4.0,
        request_timeout: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.ib = ib or IB()
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    async def connect(self) -> None:
        """Connect, or SourceUnavailable naming host:port and what to check."""
        if self.ib.isConnected():
            return
        try:
            await self.ib.connectAsync(
                self.settings.host,
                self.settings.port,
                clientId=self.settings.client_id,
                timeout=self.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:  # refused, unreachable, no handshake in time
            self.ib.disconnect()
            why = type(exc).__name__ + (f": {exc}" if str(exc) else "")
            raise SourceUnavailable(
                f"IB at {self.address} (client id {self.settings.client_id}) unreachable ({why}); "
                "is TWS or IB Gateway running with the API enabled on that port?"
            ) from exc

    def disconnect(self) -> None:
        self.ib.disconnect()

    async def request(
        self,
        symbol: str,
        asset_class: AssetClass,
        *,
        duration: str,
        end: datetime | None = None,
        keep_up_to_date: bool = False,
    ) -> BarDataList:
        """One ``reqHistoricalData`` of 5-minute bars (IB's answer as is, forming bar included);
        with ``keep_up_to_date`` the list keeps growing until ``cancel``."""
        feed = feed_for(asset_class)
        await self.connect()
        return await self.ib.reqHistoricalDataAsync(
            contract_for(symbol, asset_class),
            endDateTime="" if keep_up_to_date else (end or ""),
            durationStr=duration,
            barSizeSetting=BAR_SIZE,
            whatToShow=feed.what_to_show,
            useRTH=feed.use_rth,
            formatDate=2,
            keepUpToDate=keep_up_to_date,
            timeout=self.request_timeout,
        )

    def cancel(self, bars: BarDataList) -> None:
        """Ends a keepUpToDate subscription (quietly when the connection is already gone)."""
        with contextlib.suppress(Exception):
            self.ib.cancelHistoricalData(bars)

    async def history(
        self,
        symbol: str,
        asset_class: AssetClass,
        *,
        duration: str = "2 D",
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Closed 5-minute bars over ``duration`` (IB syntax, e.g. ``'5 D'``) ending at ``end``."""
        bars = await self.request(symbol, asset_class, duration=duration, end=end)
        now = self._clock()
        closed = [b for b in bars if not forming(b, now)]  # IB sends the forming bar last
        return ib_bars_to_frame(closed, symbol, has_volume=feed_for(asset_class).has_volume)

    async def stream_closed(
        self, symbol: str, asset_class: AssetClass, *, duration: str = "1 D"
    ) -> AsyncIterator[Bar]:
        """Closed bars as they complete (keepUpToDate), until the caller stops iterating."""
        queue: asyncio.Queue[Bar] = asyncio.Queue()
        bars = await self.request(symbol, asset_class, duration=duration, keep_up_to_date=True)
        has_volume = feed_for(asset_class).has_volume
        relay = ClosedBarRelay(symbol, queue.put_nowait, has_volume=has_volume)
        bars.updateEvent.connect(relay, keep_ref=True)
        try:
            while True:
                yield await queue.get()
        finally:
            bars.updateEvent.disconnect(relay)
            self.cancel(bars)  # the connection may already be gone
