"""Headlines scored by the text model in batches, as ``ingest-side`` and the batch loaders do.

A feed buffers the headlines that arrive between two bars and scores them in one call here:
``app.text.tagging.score_news`` tags the symbols from the text and scores sentiment and topic
intensities (the same function the training loaders use, so live rows equal batch rows), and,
when the served bundle carries a fitted news-impact ridge, each row also gets that model's
predicted impact from the headline's embedding (app/text/impact.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.config import Asset
from app.features.side_inputs import ScoredNews
from app.text.impact import NewsImpactModel
from app.types import NewsItem

if TYPE_CHECKING:  # torch and transformers load only where headlines are scored
    from app.text.sentiment import SentimentModel


@dataclass(frozen=True, slots=True)
class ScoredHeadline:
    """One (headline, tagged symbol) row: its scored news item and predicted impact (0 when
    the bundle has no fitted impact model)."""

    news: ScoredNews
    impact: float = 0.0


class HeadlineScorer:
    """Tags and scores batches of headlines for the symbols of one feed."""

    def __init__(
        self,
        model: SentimentModel,
        assets: Sequence[Asset],
        impact: NewsImpactModel | None = None,
    ) -> None:
        self.model = model
        self.assets = tuple(assets)
        self.impact = impact
        self.batches = 0

    def score(self, items: Sequence[NewsItem]) -> list[ScoredHeadline]:
        """Rows sorted as ``score_news`` sorts them (published_at, news_id, symbol)."""
        if not items:
            return []
        from app.text.tagging import score_news

        frame = score_news(items, self.assets, self.model)
        self.batches += 1
        if frame.empty:
            return []
        text_of = {item.id: item.text for item in items}
        impacts = [0.0] * len(frame)
        if self.impact is not None:
            emb = self.model.embed([text_of[i] for i in frame["news_id"]])
            impacts = [float(v) for v in self.impact.predict(emb)]
        topic_cols = [c for c in frame.columns if c.startswith("topic_")]
        out = []
        for k, row in enumerate(frame.itertuples(index=False)):
            values = row._asdict()
            topics = {c.removeprefix("topic_"): float(values[c]) for c in topic_cols}
            news = ScoredNews(
                published_at=row.published_at.to_pydatetime(),
                symbol=str(row.symbol),
                news_id=str(row.news_id),
                score=float(row.score),
                topics=topics,
            )
            out.append(ScoredHeadline(news, impacts[k]))
        return out
