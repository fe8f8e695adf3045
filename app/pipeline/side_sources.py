"""Side inputs for ``ingest_side``: news, macro and flow from feeds, APIs, files or the simulator.

A ``SideRequest`` holds the ``ingest-side`` flags as one typed value; ``collect`` reads every
input it names into a ``Collected`` (domain items, counts, rejects) before anything is
written. Readers are keyed by (kind, source).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from app.config import Asset, Settings
from app.errors import InputError
from app.sources.http import HttpClient, HttpPolicy
from app.sources.side_batch import SideBatch
from app.types import AssetClass, FlowPoint, MacroPoint, NewsItem

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


@dataclass(frozen=True, slots=True)
class SideRequest:
    """What to read (the ``ingest-side`` flags). ``kind`` is news, macro, flow or all (sim)."""

    source: str
    kind: str
    path: Path | None = None
    urls: tuple[str, ...] = ()
    base_url: str | None = None
    symbols: tuple[str, ...] = ()
    subreddit: str | None = None
    query: str | None = None
    pages: int = 1
    limit: int = 0
    asset: str = "btc"
    since: date | None = None
    until: date | None = None
    assume_utc: bool = False


def check_kind(source: str, kind: str | None) -> str:
    """The kind to read: ``all`` for the simulator unless one is named; else it must fit."""
    if source == "sim":
        return kind or "all"
    if kind is None:
        raise InputError(f"--source {source} needs --kind news|macro|flow")
    if source not in SOURCES_BY_KIND[kind]:
        raise InputError(
            f"--source {source} is not a {kind} source "
            f"(choose from {', '.join(SOURCES_BY_KIND[kind])})"
        )
    return kind


def collect(req: SideRequest, settings: Settings, client: HttpClient | None = None) -> Collected:
    """Every input of the request, read and converted (SourceUnavailable when one stays down).

    ``client`` is needed for the network sources only (a simulator folder or a file is read
    without one).
    """
    kind = req.kind
    collected = Collected(assets=tuple(settings.universe))
    if req.source == "sim":
        _collect_sim(req, collected)
        return collected
    if client is None:
        with HttpClient(HttpPolicy()) as own:
            return collect(req, settings, own)
    for batch in READERS[(kind, req.source)](req, settings, client):
        collected.take(kind, batch)
    return collected


def _need(req: SideRequest, flag: str, value: object) -> None:
    if value in (None, "", [], ()):
        raise InputError(f"--source {req.source} needs {flag}")


def _news_rss(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.news_feeds import fetch_feed

    _need(req, "--url FEED_URL", req.urls)
    return [fetch_feed(client, url, symbols=list(req.symbols)) for url in req.urls]


def _news_edgar(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.news_feeds import fetch_edgar_feed

    _need(req, "--url EDGAR_ATOM_URL", req.urls)
    return [fetch_edgar_feed(client, url, symbols=list(req.symbols)) for url in req.urls]


def _news_reddit(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.social import REDDIT_BASE_URL, fetch_reddit_new

    _need(req, "--subreddit NAME", req.subreddit)
    batch = fetch_reddit_new(
        client,
        req.subreddit,
        base_url=req.base_url or REDDIT_BASE_URL,
        max_pages=req.pages,
        symbols=list(req.symbols),
    )
    return [batch]


def _news_x(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.social import X_BASE_URL, fetch_x_recent, x_bearer_token

    _need(req, "--query TEXT", req.query)
    token = x_bearer_token()
    batch = fetch_x_recent(
        client,
        req.query,
        token=token,
        base_url=req.base_url or X_BASE_URL,
        max_pages=req.pages,
        symbols=list(req.symbols),
    )
    return [batch]


def _news_csv(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.news_csv import read_news_csv

    _need(req, "--path FILE", req.path)
    load = read_news_csv(req.path)
    batch: SideBatch[NewsItem] = SideBatch(str(req.path), list(load.items), load.n_rows)
    batch.rejected.update(load.rejected)
    return [batch]


def _macro_alternative_me(
    req: SideRequest, settings: Settings, client: HttpClient
) -> list[SideBatch]:
    from app.sources.macro_sources import ALTERNATIVE_ME_BASE_URL, fetch_alternative_me

    base = req.base_url or ALTERNATIVE_ME_BASE_URL
    return [fetch_alternative_me(client, base_url=base, limit=req.limit)]


def _macro_cnn(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.macro_sources import CNN_BASE_URL, fetch_cnn

    _need(req, "--since YYYY-MM-DD", req.since)
    return [fetch_cnn(client, start=req.since, base_url=req.base_url or CNN_BASE_URL)]


def _macro_csv(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.macro_sources import read_macro_csv

    _need(req, "--path FILE", req.path)
    return [read_macro_csv(req.path)]


def _flow_coinmetrics(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.flow_sources import (
        COINMETRICS_BASE_URL,
        fetch_coinmetrics,
        read_coinmetrics_csv,
    )

    symbol = _coinmetrics_symbol(req, settings)
    if req.path is not None:
        return [read_coinmetrics_csv(req.path, symbol=symbol)]
    _need(req, "--path FILE or --since YYYY-MM-DD", req.since)
    batch = fetch_coinmetrics(
        client,
        asset=req.asset,
        symbol=symbol,
        start=req.since,
        end=req.until,
        base_url=req.base_url or COINMETRICS_BASE_URL,
        max_pages=max(req.pages, 1),
    )
    return [batch]


def _coinmetrics_symbol(req: SideRequest, settings: Settings) -> str:
    """--symbol, else the universe asset whose ticker or alias is the Coin Metrics asset."""
    if len(req.symbols) > 1:
        raise InputError(f"--source coinmetrics takes one --symbol, got {list(req.symbols)}")
    if req.symbols:
        return req.symbols[0]
    wanted = req.asset.upper()
    for asset in settings.universe:
        if asset.asset_class is AssetClass.CRYPTO and wanted in (asset.symbol, *asset.aliases):
            return asset.symbol
    raise InputError(
        f"--asset {req.asset}: no crypto asset in the universe has alias {wanted}; pass --symbol"
    )


def _flow_finra(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.flow_sources import FINRA_BASE_URL, fetch_finra_days, read_finra_files

    symbols = list(req.symbols) or None
    if req.path is not None:
        return [read_finra_files(req.path, symbols=symbols)]
    _need(req, "--path FILE_OR_DIR or --since YYYY-MM-DD", req.since)
    until = req.until or datetime.now(UTC).date()
    base = req.base_url or FINRA_BASE_URL
    return [fetch_finra_days(client, req.since, until, base_url=base, symbols=symbols)]


def _flow_options(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.flow_sources import read_options_flow_csv

    _need(req, "--path FILE", req.path)
    return [read_options_flow_csv(req.path, assume_utc=req.assume_utc)]


def _flow_csv(req: SideRequest, settings: Settings, client: HttpClient) -> list[SideBatch]:
    from app.sources.flow_sources import read_flow_csv

    _need(req, "--path FILE", req.path)
    return [read_flow_csv(req.path)]


Reader = Callable[[SideRequest, Settings, HttpClient], list[SideBatch]]
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


def _collect_sim(req: SideRequest, collected: Collected) -> None:
    """The simulator folder's news, macro and flow (all, or the one ``--kind``)."""
    from app.sim.files import load_simulation

    _need(req, "--path SIM_FOLDER", req.path)
    result = load_simulation(req.path)
    meta = result.manifest.get("assets", {}) if isinstance(result.manifest, dict) else {}
    collected.assets = tuple(
        Asset(
            symbol=symbol,
            asset_class=asset_class,
            name=meta.get(symbol, {}).get("name", ""),
            aliases=tuple(meta.get(symbol, {}).get("aliases", ())),
        )
        for symbol, asset_class in result.asset_classes.items()
    )
    where = str(req.path)
    for name, items in (("news", result.news), ("macro", result.macro), ("flow", result.flow)):
        if req.kind in ("all", name):
            collected.take(name, SideBatch(f"{where}:{name}", list(items), len(items)))
