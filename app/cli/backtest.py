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

from app.backtest.engine import BacktestConfig, run_backtest
from app.backtest.report import write_report
from app.backtest.rule_signals import EmaCrossRule, rule_signals
from app.backtest.signals_io import check_signals
from app.config import load_settings
from app.errors import InputError
from app.sim.manifest import MANIFEST_FILE, SimManifest
from app.sources.backtest_files import load_price_files, price_files_in, read_signals_csv
from app.store import open_store
from app.types import AssetClass


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
        help="crypto|stocks|forex for every ticker, or per ticker; default: the configured "
        "universe",
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
    bars, price_rejects = _load_bars(args)
    classes = _asset_classes(args.asset_class, list(bars), settings, _manifest_classes(args))
    if args.signals is not None:
        raw = read_signals_csv(args.signals)
        batch = check_signals(raw, bars, origin=f"signals file {args.signals}")
    else:
        batch = check_signals(rule_signals(bars, EmaCrossRule()), bars)
    if args.initial_equity <= 0:
        raise InputError(f"--initial-equity={args.initial_equity!r}: must be > 0")
    config = BacktestConfig(
        initial_equity=args.initial_equity, risk=settings.risk, costs=settings.costs
    )
    result = run_backtest(bars, batch.signals, classes, config)
    metrics: dict[str, object] = result.metrics()
    metrics["signals"] = batch.summary()
    metrics["signals"]["risk_approved"] = sum(
        v for k, v in result.decisions.items() if str(k) in ("OPEN_LONG", "OPEN_SHORT", "CLOSE")
    )
    metrics["price_rows_rejected"] = {k: v for k, v in price_rejects.items() if v}
    if args.vectorbt_check:
        from app.backtest.vectorbt_check import referee

        metrics["vectorbt_check"] = referee(result, bars).to_dict()
    metrics["files"] = write_report(result, args.out, metrics)
    return metrics


def _load_bars(
    args: argparse.Namespace,
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, int]]]:
    if args.store:
        return _store_bars(args.store, args.tickers), {}
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


def _store_bars(url: str, tickers: list[str]) -> dict[str, pd.DataFrame]:
    """Bars per ticker from the store at ``url`` (every symbol in it when ``tickers`` is empty)."""
    store = open_store(url)
    try:
        bars = {}
        for sym in tickers or store.symbols("bars"):
            frame = store.read_bars(sym)
            if frame.empty:
                raise InputError(f"store {url}: no bars for ticker={sym!r}")
            bars[sym] = frame.reset_index(drop=True)
        return bars
    finally:
        store.close()


def _manifest_classes(args: argparse.Namespace) -> dict[str, str]:
    """Asset classes a simulation folder declares (``manifest.json`` field ``symbols``)."""
    if not args.prices or len(args.prices) != 1 or "=" in args.prices[0]:
        return {}
    folder = Path(args.prices[0])
    if not (folder / MANIFEST_FILE).is_file():
        return {}
    return {s: c.value for s, c in SimManifest.load(folder).asset_classes.items()}


def _asset_classes(
    given: list[str], tickers: list[str], settings: object, declared: dict[str, str]
) -> dict[str, AssetClass]:
    """Per ticker: --asset-class TICKER=CLASS, else --asset-class CLASS, else the folder's
    manifest.json, else the configured universe."""

    def parse(text: str) -> AssetClass:
        try:
            return AssetClass(text.lower())
        except ValueError:
            raise InputError(f"--asset-class {text!r}: expected crypto, stocks or forex") from None

    out: dict[str, AssetClass] = {}
    default: AssetClass | None = None
    for item in given:
        ticker, sep, cls = item.partition("=")
        if sep:
            out[ticker] = parse(cls)
        else:
            default = parse(item)
    universe = {a.symbol: a.asset_class for a in settings.universe}  # type: ignore[attr-defined]
    for ticker in tickers:
        if ticker in out:
            continue
        if default is not None:
            out[ticker] = default
        elif ticker in declared:
            out[ticker] = parse(declared[ticker])
        elif ticker in universe:
            out[ticker] = universe[ticker]
        else:
            raise InputError(
                f"ticker={ticker!r}: asset class unknown (not in the configured universe); "
                "pass --asset-class"
            )
    return out
