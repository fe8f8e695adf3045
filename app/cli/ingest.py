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
import sys
from pathlib import Path

from app.cli.args import parse_columns, parse_pairs, parse_utc_flag
from app.config import load_settings
from app.pipeline.bar_sources import FEED_SOURCES, OFFLINE_SOURCES, BarRequest, read_offline
from app.pipeline.ingest import ingest_bars
from app.schema.bar_files import CsvLayout
from app.schema.bars import TS_UNITS
from app.sources import SourceUnavailable
from app.store import open_store
from app.types import AssetClass

SOURCES = (*OFFLINE_SOURCES, *FEED_SOURCES)


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
    request = _request(args)
    # files are read and validated before the store is touched: a bad one writes nothing
    batches = read_offline(request, settings) if request.source in OFFLINE_SOURCES else []
    store = open_store(args.store or settings.store_url)
    try:
        result = ingest_bars(settings, store, request, batches, rejects=args.rejects)
    except SourceUnavailable as exc:  # the feed stayed down through every retry
        print(f"error: {exc}", file=sys.stderr)
        return {"source": args.source, "error": str(exc), "exit_code": 1}
    finally:
        store.close()
    return result.to_dict()


def _request(args: argparse.Namespace) -> BarRequest:
    return BarRequest(
        source=args.source,
        path=args.path,
        symbols=tuple(args.symbol),
        asset_class=AssetClass(args.asset_class) if args.asset_class else None,
        layout=CsvLayout(
            columns=parse_columns(args.columns),
            ts_unit=args.ts_unit,
            ts_format=args.ts_format,
            assume_utc=args.assume_utc,
            delimiter=args.delimiter,
        ),
        resample_1m=args.resample_1m,
        keep_incomplete=args.keep_incomplete,
        days=args.days,
        seed=args.seed,
        exchange=args.exchange,
        since=parse_utc_flag("--since", args.since) if args.since else None,
        until=parse_utc_flag("--until", args.until) if args.until else None,
        api_urls=parse_pairs("--api-url", args.api_url),
        duration=args.duration,
        store_as=args.store_as,
    )
