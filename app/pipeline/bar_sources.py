"""Price-bar inputs for ``ingest_bars``: files, the simulator, and the ccxt / yfinance / IB feeds.

A ``BarRequest`` says what to read (the CLI builds it from its flags); ``read_offline``
reads and validates every file or simulated symbol before a store is opened, and
``read_feed`` pulls a feed, resuming after the store's last bar when no ``since`` is given.
Each yields ``BarBatch``es: one validated input ready to write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from app.config import Settings
from app.errors import InputError
from app.schema.bar_files import PARQUET_SUFFIXES, CsvLayout, CsvSource, symbol_from_filename
from app.schema.bars import ValidationResult, validate_bars
from app.store import TimeSeriesStore
from app.types import AssetClass

log = logging.getLogger(__name__)

OFFLINE_SOURCES = ("csv", "sim")
FEED_SOURCES = ("ccxt", "yfinance", "ib")


@dataclass(frozen=True, slots=True)
class BarBatch:
    """One validated input (a file, or one symbol of a feed) ready to write."""

    label: str  # the file path or the feed name, for the rejects file
    symbol: str
    result: ValidationResult
    asset_class: AssetClass | None = None  # what the input itself declares (a sim manifest)


@dataclass(frozen=True, slots=True)
class BarRequest:
    """What to read: the ``ingest`` flags as one typed value."""

    source: str
    path: Path | None = None
    symbols: tuple[str, ...] = ()
    asset_class: AssetClass | None = None
    layout: CsvLayout = field(default_factory=CsvLayout)
    resample_1m: bool = False
    keep_incomplete: bool = False
    days: int = 30
    seed: int = 7
    exchange: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    api_urls: Mapping[str, str] = field(default_factory=dict)
    duration: str = "2 D"
    store_as: str | None = None

    def __post_init__(self) -> None:
        if self.source not in (*OFFLINE_SOURCES, *FEED_SOURCES):
            known = ", ".join((*OFFLINE_SOURCES, *FEED_SOURCES))
            raise InputError(f"--source={self.source!r}: expected one of {known}")
        if self.source in FEED_SOURCES and self.store_as and len(self.symbols) > 1:
            raise InputError(
                f"--as {self.store_as!r} needs exactly one --symbol, got {list(self.symbols)}"
            )


def read_offline(request: BarRequest, settings: Settings) -> list[BarBatch]:
    """Every file / simulated symbol of the request, read and validated."""
    return list(_OFFLINE[request.source](request, settings))


def read_feed(request: BarRequest, settings: Settings, store: TimeSeriesStore) -> list[BarBatch]:
    """The feed's bars per symbol (SourceUnavailable when it stays down)."""
    return list(_FEEDS[request.source](request, settings, store))


def _csv_batches(req: BarRequest, settings: Settings) -> Iterator[BarBatch]:
    if req.path is None:
        raise InputError("--source csv needs --path FILE_OR_DIR")
    for path, symbol in csv_inputs(req.path, list(req.symbols), resample_1m=req.resample_1m):
        source = CsvSource(
            path,
            layout=req.layout,
            resample_1m=req.resample_1m,
            drop_incomplete=not req.keep_incomplete,
        )
        result = source.load(symbol)
        log.info("%s: %d rows, %d rejected", path, result.rows_read, result.rows_rejected)
        yield BarBatch(label=str(path), symbol=symbol, result=result)


def csv_inputs(path: Path, symbols: list[str], *, resample_1m: bool) -> list[tuple[Path, str]]:
    """(file, symbol) pairs: one file, or every <SYMBOL>_5m file under a folder."""
    if path.is_file():
        if len(symbols) > 1:
            raise InputError(f"{path}: one file holds one symbol; got --symbol {symbols}")
        return [(path, symbols[0] if symbols else symbol_from_filename(path))]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder")
    suffix = "_1m" if resample_1m else "_5m"
    files = sorted(
        f
        for f in path.rglob(f"*{suffix}.*")
        if f.is_file() and f.suffix.lower() in (".csv", *PARQUET_SUFFIXES)
    )
    pairs = [(f, symbol_from_filename(f)) for f in files]
    if symbols:
        pairs = [(f, s) for f, s in pairs if s in symbols]
    if not pairs:
        wanted = f" for symbols {symbols}" if symbols else ""
        raise InputError(f"{path}: no *{suffix}.csv or *{suffix}.parquet files{wanted}")
    return pairs


def _sim_batches(req: BarRequest, settings: Settings) -> Iterator[BarBatch]:
    from app.sim.config import SimConfig
    from app.sim.files import load_simulation
    from app.sim.market import SimulatedMarket

    if req.path is not None:
        result = load_simulation(req.path)
        label = str(req.path)
    else:
        if req.days < 1:
            raise InputError(f"--days={req.days}: must be >= 1")
        config = SimConfig(seed=req.seed, days=req.days, labels=settings.labels)
        result = SimulatedMarket(config).run()
        label = f"sim:seed={req.seed}:days={req.days}"
    unknown = sorted(set(req.symbols) - set(result.bars))
    if unknown:
        raise InputError(f"--symbol {unknown}: not in the simulation ({sorted(result.bars)})")
    for symbol, frame in sorted(result.bars.items()):
        if not req.symbols or symbol in req.symbols:
            yield BarBatch(
                label=label,
                symbol=symbol,
                result=validate_bars(frame, symbol),
                asset_class=AssetClass(result.asset_classes[symbol]),
            )


def _ccxt_batches(
    req: BarRequest, settings: Settings, store: TimeSeriesStore
) -> Iterator[BarBatch]:
    from app.sources.ccxt_source import CcxtSource, store_symbol  # ccxt loads only when used

    if not req.symbols:
        raise InputError("--source ccxt needs --symbol, e.g. BTC/USDT")
    ccxt_settings = settings.ccxt
    if req.exchange:
        ccxt_settings = ccxt_settings.model_copy(update={"exchange": req.exchange})
    source = CcxtSource.from_settings(ccxt_settings, api_urls=dict(req.api_urls))
    for market in req.symbols:
        symbol = req.store_as or store_symbol(market)
        frame = source.backfill(market, since=_since(req, store, symbol), until=req.until)
        label = f"ccxt:{source.exchange.id}:{market}"
        yield BarBatch(label=label, symbol=symbol, result=validate_bars(frame, symbol))


def _yfinance_batches(
    req: BarRequest, settings: Settings, store: TimeSeriesStore
) -> Iterator[BarBatch]:
    from app.sources.yfinance_source import YFinanceSource

    if not req.symbols:
        raise InputError("--source yfinance needs --symbol, e.g. SPY or EURUSD=X")
    source = YFinanceSource()
    for ticker in req.symbols:
        symbol = req.store_as or ticker
        frame = source.history(ticker, since=_since(req, store, symbol), until=req.until)
        yield BarBatch(
            label=f"yfinance:{ticker}", symbol=symbol, result=validate_bars(frame, symbol)
        )


def _ib_batches(req: BarRequest, settings: Settings, store: TimeSeriesStore) -> Iterator[BarBatch]:
    from app.sources.ib_source import IBSource, feed_for

    if not req.symbols or not req.asset_class:
        raise InputError("--source ib needs --symbol (e.g. AAPL) and --asset-class stocks|forex")
    asset_class = req.asset_class
    feed_for(asset_class)  # stocks or forex, before connecting
    source = IBSource(settings.ib)

    async def fetch() -> list[tuple[str, pd.DataFrame]]:
        try:
            return [
                (t, await source.history(t, asset_class, duration=req.duration, end=req.until))
                for t in req.symbols
            ]
        finally:
            source.disconnect()

    for ticker, frame in asyncio.run(fetch()):
        symbol = req.store_as or ticker
        frame = frame.assign(symbol=symbol)
        yield BarBatch(
            label=f"ib:{source.address}:{ticker}",
            symbol=symbol,
            result=validate_bars(frame, symbol),
        )


def _since(req: BarRequest, store: TimeSeriesStore, symbol: str) -> datetime:
    """``since``, or resume right after the store's last bar of ``symbol``."""
    if req.since is not None:
        return req.since
    last = store.last_ts("bars", symbol)
    if last is None:
        raise InputError(f"{symbol} has no bars in the store yet: give --since ISO-8601")
    return last + pd.Timedelta(minutes=5)


_OFFLINE: dict[str, Callable[[BarRequest, Settings], Iterator[BarBatch]]] = {
    "csv": _csv_batches,
    "sim": _sim_batches,
}
_FEEDS: dict[str, Callable[[BarRequest, Settings, TimeSeriesStore], Iterator[BarBatch]]] = {
    "ccxt": _ccxt_batches,
    "yfinance": _yfinance_batches,
    "ib": _ib_batches,
}
