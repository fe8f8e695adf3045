"""``python -m app simulate``: write a seeded multi-modal market with its oracle to a folder."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from app.config import load_settings
from app.errors import InputError
from app.sim.catalog import CATALOG, DEFAULT_SYMBOLS, catalog_assets
from app.sim.config import SimConfig
from app.sim.files import write_simulation
from app.sim.market import SimulatedMarket
from app.types import AssetClass


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="generate bars, news, Fear & Greed, flow and the oracle into a folder",
        description="Seeded simulated market (docs/SIMULATOR.md). Same seed, same bytes.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created)")
    p.add_argument("--days", type=int, default=30, help="calendar days to simulate (default 30)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument(
        "--asset-class",
        nargs="+",
        choices=[c.value for c in AssetClass],
        help="keep only these asset classes",
    )
    p.add_argument(
        "--symbols",
        nargs="+",
        help=f"symbols from the catalog {sorted(CATALOG)} (default {' '.join(DEFAULT_SYMBOLS)})",
    )
    p.add_argument("--start", help="first UTC day, YYYY-MM-DD (default 2025-01-06)")
    p.add_argument("--news-per-day", type=float, help="headlines per asset per day (default 16)")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> SimConfig:
    if args.days < 1:
        raise InputError(f"--days={args.days}: must be >= 1")
    symbols = tuple(args.symbols) if args.symbols else DEFAULT_SYMBOLS
    try:
        assets = catalog_assets(symbols)
    except ValueError as exc:
        raise InputError(f"--symbols: {exc}") from exc
    if args.asset_class:
        assets = tuple(a for a in assets if a.asset_class.value in args.asset_class)
        if not assets:
            raise InputError(
                f"--asset-class={args.asset_class}: none of the symbols {list(symbols)} is in it"
            )
    kw: dict[str, object] = {
        "seed": args.seed,
        "days": args.days,
        "assets": assets,
        "labels": load_settings().labels,
    }
    if args.start:
        try:
            kw["start"] = datetime.strptime(args.start, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError as exc:
            raise InputError(f"--start={args.start!r}: expected YYYY-MM-DD") from exc
    if args.news_per_day is not None:
        if args.news_per_day < 0:
            raise InputError(f"--news-per-day={args.news_per_day}: must be >= 0")
        kw["news_per_day"] = args.news_per_day
    return SimConfig(**kw)  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> dict:
    config = _config(args)
    t0 = time.perf_counter()
    result = SimulatedMarket(config).run()
    folder = write_simulation(result, args.out)
    return {
        "command": "simulate",
        "out": str(folder),
        "seed": config.seed,
        "days": config.days,
        "horizon": config.labels.horizon,
        "bars": dict(result.manifest.counts.bars),
        "news": len(result.news),
        "macro": len(result.macro),
        "flow": len(result.flow),
        "oracle_dacc": dict(result.manifest.oracle_dacc),
        "seconds": round(time.perf_counter() - t0, 2),
    }
