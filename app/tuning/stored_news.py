"""Scored news rebuilt from the store: the frame ``score_news`` gives, from stored rows.

The ``features`` job (app.pipeline) and training from the store (``data_loading.load_store``) both
read headlines this way, so a model trained from the store sees what ``--data`` gives it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from app.config import Settings, load_settings
from app.errors import InputError
from app.features.spec import FeatureSpec
from app.store import TimeSeriesStore
from app.types import NewsItem

if TYPE_CHECKING:
    from app.text.sentiment import SentimentModel

log = logging.getLogger(__name__)


def read_or_none(
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
    scores = read_or_none(store, "sentiment", symbol, start, end)
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
    rows = read_or_none(store, "news", symbol, start, end)
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
