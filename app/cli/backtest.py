"""``python -m app backtest``: signals -> risk engine -> next-open fills -> metrics and report.

    python -m app backtest --prices DIR --signals signals.csv --out runs/bt
    python -m app backtest --prices BTCUSDT=a.csv ETHUSDT=b.csv --rule ema_cross --out runs/bt
    python -m app backtest --store duckdb:///runs/store.db --tickers BTCUSDT --signals s.csv --out d

Prints the metrics JSON (with the signal counts) as the last stdout line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from app.backtest.rule_signals import EmaCrossRule, rule_signals
from app.backtest.signals_io import check_signals
from app.config import load_settings
from app.errors import InputError
from app.pipeline.assets import file_asset_classes, manifest_classes
from app.pipeline.backtest import run_backtest_job, store_bars, store_classes
from app.sources.backtest_files import load_price_files, price_files_in, read_signals_csv
from app.store import open_store


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "backtest",
        help="risk-checked event-driven backtest of a signals file (or the EMA rule)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--prices",
        nargs="+",
        metavar="TICKER=FILE|DIR",
        help="price files as TICKER=FILE, or one folder of <TICKER>_5m.csv files",
    )
    src.add_argument("--store", metavar="URL", help="read bars from the store (duckdb:///...)")
    p.add_argument("--tickers", nargs="*", default=[], help="tickers to read from --store")
    sig = p.add_mutually_exclusive_group(required=True)
    sig.add_argument("--signals", type=Path, help="CSV with ts,ticker,signal,confidence")
    sig.add_argument(
        "--rule", choices=["ema_cross"], help="signals from the built-in EMA crossover rule"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--asset-class",
        nargs="+",
        default=[],
        metavar="CLASS|TICKER=CLASS",
        help="crypto|stocks|forex for every ticker, or per ticker; default: what the store "
        "recorded (--store; a flag must agree with it), the folder's manifest.json, the "
        "configured universe",
    )
    p.add_argument("--initial-equity", type=float, default=100_000.0)
    p.add_argument("--config", type=Path, help="settings TOML (risk limits, costs)")
    p.add_argument(
        "--vectorbt-check",
        action="store_true",
        help="replay the fills through vectorbt and report the equity agreement",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict[str, object]:
    settings = load_settings(args.config) if args.config else load_settings()
    if args.store:
        store = open_store(args.store)
        try:
            bars, price_rejects = store_bars(store, args.tickers), {}
            classes = store_classes(store, list(bars), args.asset_class, settings)
        finally:
            store.close()
    else:
        bars, price_rejects = _price_files(args)
        folder = (
            Path(args.prices[0]) if len(args.prices) == 1 and "=" not in args.prices[0] else None
        )
        declared = manifest_classes(folder) if folder is not None else {}
        classes = file_asset_classes(args.asset_class, list(bars), settings, declared)
    if args.signals is not None:
        raw = read_signals_csv(args.signals)
        batch = check_signals(raw, bars, origin=f"signals file {args.signals}")
    else:
        batch = check_signals(rule_signals(bars, EmaCrossRule()), bars)
    result = run_backtest_job(
        settings,
        bars,
        batch,
        classes,
        args.out,
        initial_equity=args.initial_equity,
        price_rejects=price_rejects,
        vectorbt_check=args.vectorbt_check,
    )
    return result.to_dict()


def _price_files(
    args: argparse.Namespace,
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, int]]]:
    items = args.prices
    if len(items) == 1 and "=" not in items[0]:
        return load_price_files(price_files_in(Path(items[0])))
    pairs = []
    for item in items:
        ticker, sep, file = item.partition("=")
        if not sep or not ticker or not file:
            raise InputError(f"--prices {item!r}: expected TICKER=FILE (or a single DIR)")
        pairs.append((ticker, Path(file)))
    return load_price_files([p for _, p in pairs], [t for t, _ in pairs])
