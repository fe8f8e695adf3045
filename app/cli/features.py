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
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.config import Settings, load_settings
from app.errors import InputError
from app.features.batch import build_features
from app.features.spec import FeatureSpec, default_spec
from app.store import TimeSeriesStore, open_store
from app.types import AssetClass, NewsItem

if TYPE_CHECKING:
    from app.text.sentiment import SentimentModel

SPEC_METADATA_KEY = b"feature_spec"
log = logging.getLogger(__name__)


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
        help="default: the symbol's class in the configured universe",
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
    asset_class = _asset_class(args, settings)
    spec = default_spec(asset_class, topics=tuple(settings.sentiment.topics))
    if args.side_lookback_days < 0:
        raise InputError(f"--side-lookback-days={args.side_lookback_days}: must be >= 0")
    store = open_store(args.store or settings.store_url)
    try:
        bars = store.read_bars(args.symbol, args.start, args.end)
        if bars.empty:
            raise InputError(
                f"--symbol={args.symbol!r}: no bars in the store for [{args.start}, {args.end})"
            )
        side_start = bars["ts"].iloc[0].to_pydatetime() - timedelta(days=args.side_lookback_days)
        news = scored_news(
            store, args.symbol, spec, side_start, args.end, args.sentiment_model,
            settings=settings,
        )  # fmt: skip
        macro = _read(store, "macro", None, side_start, args.end)
        if macro is not None:
            series = {spec.fear_greed_series, spec.implied_vol_series} - {""}
            macro = macro[macro["symbol"].isin(series)]
        flow = _read(store, "flow", args.symbol, side_start, args.end)
    finally:
        store.close()
    frame = build_features(
        bars, asset_class=asset_class, news=news, macro=macro, flow=flow, spec=spec
    )
    write_parquet(frame, spec, args.out)
    return {
        "symbol": args.symbol,
        "asset_class": asset_class.value,
        "out": str(args.out),
        "side_rows": {
            "news": 0 if news is None else len(news),
            "macro": 0 if macro is None else len(macro),
            "flow": 0 if flow is None else len(flow),
        },
        "rejected_side_rows": {
            **frame.attrs.get("rejected_side_rows", {}),
            **({} if news is None else news.attrs.get("rejected_side_rows", {})),
        },
        "rows": len(frame),
        "columns": len(frame.columns),
        "feature_names": list(spec.feature_names),
        "warmup_rows": min(spec.warmup_bars, len(frame)),
    }


def _asset_class(args: argparse.Namespace, settings: Any) -> AssetClass:
    if args.asset_class:
        return AssetClass(args.asset_class)
    try:
        return settings.asset(args.symbol).asset_class
    except KeyError:
        raise InputError(
            f"--symbol={args.symbol!r}: not in the configured universe; pass --asset-class"
        ) from None


def _read(
    store: TimeSeriesStore, table: str, symbol: str | None, start: datetime, end: datetime | None
) -> pd.DataFrame | None:
    frame = store.read(table, symbol, start, end)
    return frame if len(frame) else None


def scored_news(
    store: TimeSeriesStore,
    symbol: str | None,
    spec: FeatureSpec,
    start: datetime | None,
    end: datetime | None,
    model: str | None,
    *,
    topic_model: SentimentModel | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame | None:
    """The scored-news frame of ``score_news``, rebuilt from the ``sentiment`` and ``news``
    tables (``symbol=None``: every symbol).

    Scores are the stored ones of scorer ``model`` (default: the one with the newest row).
    Topic intensities are computed from each item's stored title and body with
    ``topic_model`` (default: the configured SentimentModel, loaded only when there are
    rows), exactly as ``score_news`` does: the store's ``topic`` label is a feed category
    (the simulator's ground truth), which a live system would not have. Sentiment rows whose
    item is missing from the ``news`` table have no text to read: they are dropped and
    counted in ``frame.attrs["rejected_side_rows"]["news.no_text"]``.
    """
    scores = _read(store, "sentiment", symbol, start, end)
    if scores is None:
        return None
    models = scores["model"].unique().tolist()
    if model is None:
        model = str(scores.sort_values("ts")["model"].iloc[-1])
    elif model not in models:
        raise InputError(f"--sentiment-model={model!r}: not in the sentiment table ({models})")
    scores = scores[scores["model"] == model]
    news = scores.rename(columns={"ts": "published_at"})[
        ["published_at", "symbol", "news_id", "score"]
    ].reset_index(drop=True)
    text_of = news_texts(store, symbol, start, end)
    texts = news["news_id"].map(text_of)
    missing = int(texts.isna().sum())
    if missing:
        log.warning("%d sentiment rows have no item in the news table: dropped", missing)
        news, texts = news[texts.notna()].reset_index(drop=True), texts.dropna().tolist()
    else:
        texts = texts.tolist()
    if len(news):
        if topic_model is None:
            settings = settings or load_settings()
            from app.models.text_loader import cached_sentiment_model

            topic_model = cached_sentiment_model(settings.sentiment, settings.registry_dir)
        names, intensity = topic_model.topic_names, topic_model.topic_intensity(texts)
    else:
        names, intensity = spec.topics, np.zeros((0, len(spec.topics)))
    for j, name in enumerate(names):
        news[f"topic_{name}"] = intensity[:, j].astype("float64")
    news = news.sort_values(["published_at", "news_id", "symbol"], kind="stable")
    news = news.reset_index(drop=True)
    if missing:
        news.attrs["rejected_side_rows"] = {"news.no_text": missing}
    return news


def news_texts(
    store: TimeSeriesStore, symbol: str | None, start: datetime | None, end: datetime | None
) -> dict[str, str]:
    """news id -> the text ``score_news`` encodes (``NewsItem.text``: title and body)."""
    rows = _read(store, "news", symbol, start, end)
    if rows is None:
        return {}
    texts = {}
    for row in rows.itertuples(index=False):
        title, body = (v if isinstance(v, str) else "" for v in (row.title, row.body))
        if title or body:
            item = NewsItem(
                id=row.id, published_at=row.ts.to_pydatetime(), source="", title=title, body=body
            )
            texts[row.id] = item.text
    return texts


def write_parquet(frame: pd.DataFrame, spec: FeatureSpec, out: Path) -> None:
    """Parquet with the spec in the schema metadata, so the file explains its columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[SPEC_METADATA_KEY] = json.dumps(spec.to_dict()).encode()
    pq.write_table(table.replace_schema_metadata(metadata), out)
