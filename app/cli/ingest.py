"""``python -m app ingest``: price bars from a source -> validation -> the store.

    python -m app ingest --source csv --path ../shared/data/crypto_binance_spot_5m \\
        --store duckdb:///runs/store.db --rejects runs/rejects.csv
    python -m app ingest --source csv --path BTCUSDT_1m.csv --resample-1m --store URL
    python -m app ingest --source csv --path spy.csv --symbol SPY \\
        --columns Datetime=ts,Open=open,High=high,Low=low,Close=close,Volume=volume --store URL
    python -m app ingest --source sim --path runs/sim --store URL       # a simulate folder
    python -m app ingest --source sim --days 10 --seed 7 --store URL     # or generate it
    python -m app ingest --source ccxt --symbol BTC/USDT --since 2025-01-01T00:00:00Z --store URL
    python -m app ingest --source yfinance --symbol SPY --since 2025-08-01T00:00:00Z --store URL
    python -m app ingest --source ib --symbol AAPL --asset-class stocks --duration "5 D" --store URL

Every file/symbol is read and validated before anything is written, so a missing file or
column (exit 2, one stderr line) writes nothing. Feeds (ccxt, yfinance) resume after the
store's last bar when --since is not given; a feed that stays unreachable exits 1.
Bad rows are rejected and counted by reason; rows already in the store are skipped by its
idempotent write (a second run writes 0). The last stdout line is the JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from app.config import Settings, load_settings
from app.errors import InputError
from app.schema.bar_files import PARQUET_SUFFIXES, CsvLayout, CsvSource, symbol_from_filename
from app.schema.bars import REASONS, TS_UNITS, ValidationResult, validate_bars
from app.sources import SourceUnavailable
from app.store import TimeSeriesStore, open_store
from app.types import AssetClass

log = logging.getLogger(__name__)

SOURCES = ("csv", "sim", "ccxt", "yfinance", "ib")


@dataclass(frozen=True, slots=True)
class Batch:
    """One validated input (a file, or one symbol of a feed) ready to write."""

    label: str  # the file path or the feed name, for the rejects file
    symbol: str
    result: ValidationResult


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="validate price bars from CSV/Parquet or an exchange and write them to the store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", choices=SOURCES, default="csv")
    p.add_argument("--store", metavar="URL", help="store URL (default: settings.store_url)")
    p.add_argument(
        "--path",
        type=Path,
        help="csv: a file, or a folder of <SYMBOL>_5m.csv files; sim: a simulate folder",
    )
    p.add_argument(
        "--symbol",
        action="append",
        default=[],
        help="csv file: its symbol (default: from the file name); csv folder / sim: only these "
        "symbols (repeatable); ccxt: the market, e.g. BTC/USDT; yfinance / ib: the ticker",
    )
    p.add_argument(
        "--asset-class",
        choices=[a.value for a in AssetClass],
        help="ib: stocks or forex (required); otherwise reported in the summary",
    )
    p.add_argument("--rejects", type=Path, metavar="FILE", help="write rejected rows to this CSV")
    p.add_argument("--config", type=Path, help="settings TOML (store URL, ccxt settings)")
    csv_opts = p.add_argument_group("csv / parquet")
    csv_opts.add_argument(
        "--resample-1m",
        action="store_true",
        help="input is 1-minute bars (<SYMBOL>_1m.csv in a folder): resample to 5 minutes",
    )
    csv_opts.add_argument(
        "--keep-incomplete",
        action="store_true",
        help="with --resample-1m, keep 5-minute bins that miss some minutes",
    )
    csv_opts.add_argument(
        "--columns",
        metavar="SRC=DST,...",
        help="map file columns to ts,open,high,low,close,volume, e.g. Datetime=ts,Open=open",
    )
    csv_opts.add_argument("--ts-unit", choices=TS_UNITS, help="ts holds epoch numbers in this unit")
    csv_opts.add_argument("--ts-format", help="strptime format of ts, e.g. '%%d.%%m.%%Y %%H:%%M'")
    csv_opts.add_argument(
        "--assume-utc",
        action="store_true",
        help="timestamps without an offset are UTC (otherwise they are rejected)",
    )
    csv_opts.add_argument("--delimiter", default=",", help="field separator (default ',')")
    sim = p.add_argument_group("sim (without --path: generate with app.sim.market)")
    sim.add_argument("--days", type=int, default=30, help="calendar days to simulate")
    sim.add_argument("--seed", type=int, default=7, help="random seed")
    feed = p.add_argument_group("ccxt / yfinance / ib")
    feed.add_argument("--exchange", help="ccxt exchange id (default: settings.ccxt.exchange)")
    feed.add_argument(
        "--since",
        help="first bar, ISO-8601 UTC (default: after the store's last bar of the symbol)",
    )
    feed.add_argument("--until", help="end (exclusive), ISO-8601 UTC (default: now)")
    feed.add_argument(
        "--api-url",
        action="append",
        default=[],
        metavar="KEY=URL",
        help="ccxt: override an entry of exchange.urls['api'] (a testnet or proxy), "
        "e.g. public=http://127.0.0.1:8080/api/v3",
    )
    feed.add_argument("--duration", default="2 D", help="ib: how far back, IB syntax ('5 D')")
    feed.add_argument(
        "--as",
        dest="store_as",
        metavar="SYMBOL",
        help="store the feed's bars under this symbol (default: BTC/USDT -> BTCUSDT; "
        "yfinance / ib: the ticker)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict[str, object]:
    settings = load_settings(args.config) if args.config else load_settings()
    store_url = args.store or settings.store_url
    batches: list[Batch] = []
    if args.source in OFFLINE:  # read + validate every input before the store is touched
        batches = list(OFFLINE[args.source](args, settings))
    store = open_store(store_url)
    try:
        if args.source in FEEDS:
            try:
                batches = list(FEEDS[args.source](args, settings, store))
            except SourceUnavailable as exc:  # the feed stayed down through every retry
                print(f"error: {exc}", file=sys.stderr)
                return {"source": args.source, "error": str(exc), "exit_code": 1}
        written = [store.write_bars(b.result.good) for b in batches]
    finally:
        store.close()
    if args.rejects is not None:
        _write_rejects(args.rejects, batches)
    return _summary(args, store_url, batches, written)


# --------------------------------------------------------------------------- sources


def _csv_batches(args: argparse.Namespace, settings: Settings) -> Iterator[Batch]:
    if args.path is None:
        raise InputError("--source csv needs --path FILE_OR_DIR")
    layout = CsvLayout(
        columns=_parse_columns(args.columns),
        ts_unit=args.ts_unit,
        ts_format=args.ts_format,
        assume_utc=args.assume_utc,
        delimiter=args.delimiter,
    )
    for path, symbol in _csv_inputs(args.path, args.symbol, resample_1m=args.resample_1m):
        source = CsvSource(
            path,
            layout=layout,
            resample_1m=args.resample_1m,
            drop_incomplete=not args.keep_incomplete,
        )
        result = source.load(symbol)
        log.info("%s: %d rows, %d rejected", path, result.rows_read, result.rows_rejected)
        yield Batch(label=str(path), symbol=symbol, result=result)


def _csv_inputs(path: Path, symbols: list[str], *, resample_1m: bool) -> list[tuple[Path, str]]:
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


def _sim_batches(args: argparse.Namespace, settings: Settings) -> Iterator[Batch]:
    from app.sim.config import SimConfig
    from app.sim.files import load_simulation
    from app.sim.market import SimulatedMarket

    if args.path is not None:
        result = load_simulation(args.path)
        label = str(args.path)
    else:
        if args.days < 1:
            raise InputError(f"--days={args.days}: must be >= 1")
        config = SimConfig(seed=args.seed, days=args.days, labels=settings.labels)
        result = SimulatedMarket(config).run()
        label = f"sim:seed={args.seed}:days={args.days}"
    unknown = sorted(set(args.symbol) - set(result.bars))
    if unknown:
        raise InputError(f"--symbol {unknown}: not in the simulation ({sorted(result.bars)})")
    for symbol, frame in sorted(result.bars.items()):
        if not args.symbol or symbol in args.symbol:
            yield Batch(label=label, symbol=symbol, result=validate_bars(frame, symbol))


def _ccxt_batches(
    args: argparse.Namespace, settings: Settings, store: TimeSeriesStore
) -> Iterator[Batch]:
    from app.sources.ccxt_source import CcxtSource, store_symbol  # ccxt loads only when used

    if not args.symbol:
        raise InputError("--source ccxt needs --symbol, e.g. BTC/USDT")
    ccxt_settings = settings.ccxt
    if args.exchange:
        ccxt_settings = ccxt_settings.model_copy(update={"exchange": args.exchange})
    source = CcxtSource.from_settings(
        ccxt_settings, api_urls=_parse_pairs("--api-url", args.api_url)
    )
    until = _parse_utc("--until", args.until) if args.until else None
    for market in args.symbol:
        symbol = _store_as(args, store_symbol(market))
        since = _since(args, store, symbol)
        frame = source.backfill(market, since=since, until=until)
        label = f"ccxt:{source.exchange.id}:{market}"
        yield Batch(label=label, symbol=symbol, result=validate_bars(frame, symbol))


def _yfinance_batches(
    args: argparse.Namespace, settings: Settings, store: TimeSeriesStore
) -> Iterator[Batch]:
    from app.sources.yfinance_source import YFinanceSource

    if not args.symbol:
        raise InputError("--source yfinance needs --symbol, e.g. SPY or EURUSD=X")
    source = YFinanceSource()
    until = _parse_utc("--until", args.until) if args.until else None
    for ticker in args.symbol:
        symbol = _store_as(args, ticker)
        frame = source.history(ticker, since=_since(args, store, symbol), until=until)
        yield Batch(label=f"yfinance:{ticker}", symbol=symbol, result=validate_bars(frame, symbol))


def _ib_batches(
    args: argparse.Namespace, settings: Settings, store: TimeSeriesStore
) -> Iterator[Batch]:
    from app.sources.ib_source import IBSource, feed_for

    if not args.symbol or not args.asset_class:
        raise InputError("--source ib needs --symbol (e.g. AAPL) and --asset-class stocks|forex")
    asset_class = AssetClass(args.asset_class)
    feed_for(asset_class)  # stocks or forex, before connecting
    until = _parse_utc("--until", args.until) if args.until else None
    source = IBSource(settings.ib)

    async def fetch() -> list[tuple[str, pd.DataFrame]]:
        try:
            return [
                (t, await source.history(t, asset_class, duration=args.duration, end=until))
                for t in args.symbol
            ]
        finally:
            source.disconnect()

    for ticker, frame in asyncio.run(fetch()):
        symbol = _store_as(args, ticker)
        frame = frame.assign(symbol=symbol)
        yield Batch(
            label=f"ib:{source.address}:{ticker}",
            symbol=symbol,
            result=validate_bars(frame, symbol),
        )


OFFLINE: dict[str, Callable[[argparse.Namespace, Settings], Iterator[Batch]]] = {
    "csv": _csv_batches,
    "sim": _sim_batches,
}
FEEDS: dict[str, Callable[[argparse.Namespace, Settings, TimeSeriesStore], Iterator[Batch]]] = {
    "ccxt": _ccxt_batches,
    "yfinance": _yfinance_batches,
    "ib": _ib_batches,
}


# --------------------------------------------------------------------------- helpers


def _store_as(args: argparse.Namespace, default: str) -> str:
    if args.store_as and len(args.symbol) > 1:
        raise InputError(f"--as {args.store_as!r} needs exactly one --symbol, got {args.symbol}")
    return args.store_as or default


def _since(args: argparse.Namespace, store: TimeSeriesStore, symbol: str) -> datetime:
    """--since, or resume right after the store's last bar of ``symbol``."""
    if args.since:
        return _parse_utc("--since", args.since)
    last = store.last_ts("bars", symbol)
    if last is None:
        raise InputError(f"{symbol} has no bars in the store yet: give --since ISO-8601")
    return last + pd.Timedelta(minutes=5)


def _parse_columns(text: str | None) -> dict[str, str]:
    return _parse_pairs("--columns", text.split(",")) if text else {}


def _parse_pairs(flag: str, parts: list[str]) -> dict[str, str]:
    """``["a=b", "c=d"]`` -> ``{"a": "b", "c": "d"}``, or InputError naming the bad part."""
    mapping: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"{flag} {part!r}: expected KEY=VALUE, e.g. Open=open")
        mapping[key.strip()] = value.strip()
    return mapping


def _parse_utc(flag: str, text: str) -> datetime:
    try:
        ts = pd.Timestamp(text)
    except ValueError as exc:
        raise InputError(f"{flag}={text!r}: not an ISO-8601 timestamp") from exc
    if ts.tzinfo is None:
        raise InputError(f"{flag}={text!r}: add a UTC offset, e.g. {text}Z")
    return ts.tz_convert("UTC").to_pydatetime()


def _write_rejects(path: Path, batches: list[Batch]) -> None:
    frames = [b.result.rejects.assign(source=b.label, symbol=b.symbol) for b in batches]
    rejects = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    columns = ["source", "symbol", *[c for c in rejects.columns if c not in ("source", "symbol")]]
    path.parent.mkdir(parents=True, exist_ok=True)
    rejects.reindex(columns=columns).to_csv(path, index=False)


def _summary(
    args: argparse.Namespace, store_url: str, batches: list[Batch], written: list[int]
) -> dict[str, object]:
    by_reason = {reason: sum(b.result.counts.get(reason, 0) for b in batches) for reason in REASONS}
    good = sum(len(b.result.good) for b in batches)
    rows_written = sum(written)
    summary: dict[str, object] = {
        "source": args.source,
        "store": store_url,
        "symbols": sorted({b.symbol for b in batches}),
        "inputs": len(batches),
    }
    if args.asset_class:
        summary["asset_class"] = args.asset_class
    if getattr(args, "resample_1m", False):
        summary["incomplete_bins_dropped"] = sum(b.result.incomplete_bins_dropped for b in batches)
    summary.update(
        rows_read=sum(b.result.rows_read for b in batches),
        rows_written=rows_written,
        rows_rejected=sum(b.result.rows_rejected for b in batches),
        rejected_by_reason={k: v for k, v in by_reason.items() if v},
        duplicates_skipped=good - rows_written,
    )
    return summary
