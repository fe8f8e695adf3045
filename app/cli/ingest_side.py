"""``python -m app ingest-side``: news, macro and flow side inputs -> the store.

    python -m app ingest-side --kind news --source rss --url https://example.com/rss.xml \\
        --store duckdb:///runs/store.db
    python -m app ingest-side --kind news --source edgar --symbol AAPL --user-agent "Me me@x.org" \\
        --url "https://www.sec.gov/cgi-bin/browse-edgar?action=getcompany&CIK=0000320193&output=atom"
    python -m app ingest-side --kind news --source reddit --subreddit CryptoCurrency --pages 2
    X_BEARER_TOKEN=... python -m app ingest-side --kind news --source x --query '$AAPL lang:en'
    python -m app ingest-side --kind news --source csv \\
        --path ../shared/data/news_crypto_cryptonews/crypto_news.csv
    python -m app ingest-side --kind macro --source alternative_me --limit 30
    python -m app ingest-side --kind macro --source cnn --since 2025-01-01
    python -m app ingest-side --kind macro --source csv \\
        --path ../shared/data/fear_greed/cnn_fear_greed.csv
    python -m app ingest-side --kind flow --source coinmetrics --path btc_daily.csv --symbol BTCUSDT
    python -m app ingest-side --kind flow --source coinmetrics --asset btc --since 2025-01-01
    python -m app ingest-side --kind flow --source finra --since 2025-06-02 --until 2025-06-06 \\
        --symbol AAPL
    python -m app ingest-side --kind flow --source options_csv --path uoa.csv
    python -m app ingest-side --source sim --path runs/sim          # news + macro + flow

Every input is fetched or read and converted before the store is touched, so a bad flag, file
or unreachable endpoint writes nothing. News go to the ``news`` table and, with ``--score``
(the default), their sentiment to ``sentiment`` (one row per item and universe symbol, scored
by the configured SentimentModel). Writes are idempotent: a second run writes 0. Exit 2 for
bad input, 1 for an endpoint that stays unreachable; the last stdout line is the JSON summary.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from app.config import load_settings
from app.errors import InputError
from app.pipeline.side import ingest_side
from app.pipeline.side_sources import KINDS, SideRequest, check_kind, collect
from app.pipeline.side_sources import SOURCES_BY_KIND as SOURCES_BY_KIND
from app.sources import SourceUnavailable
from app.sources.http import DEFAULT_USER_AGENT, HttpClient, HttpPolicy
from app.store import open_store

ALL_SOURCES = tuple(dict.fromkeys(s for group in SOURCES_BY_KIND.values() for s in group))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ingest-side",
        help="news / Fear & Greed / flow from feeds, APIs or files -> the store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--kind", choices=KINDS, help="which side input (all three for --source sim)")
    p.add_argument("--source", choices=ALL_SOURCES, required=True)
    p.add_argument("--store", metavar="URL", help="store URL (default: settings.store_url)")
    p.add_argument("--config", type=Path, help="settings TOML (universe, sentiment model)")
    p.add_argument("--path", type=Path, help="a file (or a folder of FINRA files / a sim folder)")
    p.add_argument("--url", action="append", default=[], help="rss / edgar: feed URL (repeatable)")
    p.add_argument(
        "--base-url",
        help="API root for reddit, x, alternative_me, cnn, coinmetrics, finra "
        "(default: the public endpoint; set it for a proxy or a test server)",
    )
    p.add_argument(
        "--symbol",
        action="append",
        default=[],
        help="news: symbols every item is about; coinmetrics: the bars' symbol (default: the "
        "universe asset aliased to --asset); finra: keep only these tickers",
    )
    p.add_argument(
        "--score",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="news: also score sentiment into the sentiment table (default on)",
    )
    p.add_argument("--subreddit", help="reddit: the subreddit, e.g. CryptoCurrency")
    p.add_argument("--query", help="x: the recent-search query, e.g. '$AAPL lang:en'")
    p.add_argument("--pages", type=int, default=1, help="reddit / x / coinmetrics: max pages")
    p.add_argument("--limit", type=int, default=0, help="alternative_me: last N days (0 = all)")
    p.add_argument("--asset", default="btc", help="coinmetrics: asset id (default btc)")
    p.add_argument("--since", type=_date, help="cnn / coinmetrics / finra: first day, YYYY-MM-DD")
    p.add_argument("--until", type=_date, help="coinmetrics / finra: last day (default: today)")
    p.add_argument("--assume-utc", action="store_true", help="options_csv: naive times are UTC")
    p.add_argument(
        "--user-agent",
        default=DEFAULT_USER_AGENT,
        help="HTTP User-Agent (SEC wants 'Name email'; CNN wants a browser-like one)",
    )
    p.add_argument("--timeout", type=float, default=15.0, help="seconds per HTTP request")
    p.add_argument("--retries", type=int, default=3, help="HTTP retries on 429/5xx/network errors")
    p.add_argument("--backoff", type=float, default=1.0, help="first retry wait in seconds")
    p.set_defaults(func=run)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected YYYY-MM-DD") from exc


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(args.config) if args.config else load_settings()
    kind = check_kind(args.source, args.kind)
    try:
        policy = HttpPolicy(timeout_s=args.timeout, retries=args.retries, backoff_s=args.backoff)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    request = SideRequest(
        source=args.source,
        kind=kind,
        path=args.path,
        urls=tuple(args.url),
        base_url=args.base_url,
        symbols=tuple(args.symbol),
        subreddit=args.subreddit,
        query=args.query,
        pages=args.pages,
        limit=args.limit,
        asset=args.asset,
        since=args.since,
        until=args.until,
        assume_utc=args.assume_utc,
    )
    with HttpClient(policy, user_agent=args.user_agent) as client:
        try:  # every input is read before the store is opened: a bad one writes nothing
            collected = collect(request, settings, client)
        except SourceUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return {"kind": kind, "source": args.source, "error": str(exc), "exit_code": 1}
    store = open_store(args.store or settings.store_url)
    try:
        result = ingest_side(
            settings, store, collected, kind=kind, source=args.source, score=args.score
        )
    finally:
        store.close()
    return result.to_dict()
