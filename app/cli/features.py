"""``python -m app features``: the feature matrix of one symbol, from the store to Parquet.

    python -m app features --store duckdb:///runs/store.db --symbol BTCUSDT \\
        --start 2025-01-01T00:00:00Z --end 2025-02-01T00:00:00Z --out runs/features/BTCUSDT.parquet

Reads the symbol's bars in ``[start, end)`` and, when present, its scored news (``sentiment``
table for the score; topic intensities computed from the ``news`` table's title and body with
the configured sentiment model, as ``score_news`` does), the macro series its asset
class uses and its flow rows, from ``--side-lookback-days`` before ``start`` so decayed sums
and as-of values are warm at the first bar. Writes ``ts`` + the spec's feature columns to
Parquet, with the spec as JSON in the file's metadata (key ``feature_spec``). The last stdout
line is the JSON summary: rows, columns, feature_names, warmup_rows, rejected side rows.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config import load_settings
from app.pipeline.features import build_feature_table
from app.store import open_store
from app.types import AssetClass


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "features",
        help="build the feature matrix of one symbol from the store and write it to Parquet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--store", metavar="URL", help="store URL (default: settings.store_url)")
    p.add_argument("--symbol", required=True)
    p.add_argument("--start", type=parse_utc, help="first bar open time, ISO UTC (inclusive)")
    p.add_argument("--end", type=parse_utc, help="ISO UTC, exclusive")
    p.add_argument(
        "--asset-class",
        choices=[a.value for a in AssetClass],
        help="default: the class ingest recorded in the store, else the configured universe; "
        "must agree with the store",
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE.parquet")
    p.add_argument("--side-lookback-days", type=float, default=30.0)
    p.add_argument(
        "--sentiment-model",
        help="which scorer's rows to use when the sentiment table holds several "
        "(default: the model with the most recent row)",
    )
    p.add_argument("--config", type=Path, help="settings TOML (default: APP_CONFIG / defaults)")
    p.set_defaults(func=run)


def parse_utc(text: str) -> datetime:
    """ISO-8601 with an explicit UTC offset (``Z`` or ``+00:00``) -> aware datetime."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: not an ISO-8601 time") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give the time zone (e.g. ...Z for UTC)")
    return value.astimezone(UTC)


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(args.config) if args.config else load_settings()
    store = open_store(args.store or settings.store_url)
    try:
        result = build_feature_table(
            settings,
            store,
            args.symbol,
            args.out,
            start=args.start,
            end=args.end,
            asset_class=AssetClass(args.asset_class) if args.asset_class else None,
            side_lookback_days=args.side_lookback_days,
            sentiment_model=args.sentiment_model,
        )
    finally:
        store.close()
    return result.to_dict()
