"""Which assets a news item is about, and the scored-news frame the feature engine joins.

Tagging rules (``Asset`` from the settings):
- the ticker (``AAPL``, ``BTCUSDT``) and upper-case aliases (``BTC``) match case-sensitively on
  word boundaries, so "eth" or "Ethereum's" never tag the ticker ETH by accident;
- a cashtag (``$AAPL``, ``$btc``) matches in any case: the ``$`` already says it is a ticker;
- the name (``Apple``, ``Bitcoin``) and other aliases match case-insensitively on word
  boundaries;
- a six-letter forex symbol also matches as ``EUR/USD``;
- symbols the item carries itself (a feed's ticker field) tag the asset whose ticker, name or
  alias they equal. Items that tag nothing in the universe give no rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from app.config import Asset
from app.text.sentiment import SentimentModel
from app.types import AssetClass, NewsItem

_EDGE_L = r"(?<![A-Za-z0-9])"
_EDGE_R = r"(?![A-Za-z0-9])"


def _alternation(words: Sequence[str]) -> str:
    # Longest first, so "Bitcoin Cash" wins over "Bitcoin" inside one alternation.
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


class SymbolTagger:
    """Compiled matchers for a universe; build once, tag many items."""

    def __init__(self, assets: Sequence[Asset]) -> None:
        self.assets = tuple(assets)
        self._matchers: list[tuple[str, list[re.Pattern[str]]]] = []
        self._by_label: dict[str, str] = {}
        for asset in self.assets:
            tickers = [asset.symbol] + [a for a in asset.aliases if a.isupper()]
            names = [n for n in (asset.name, *asset.aliases) if n and not n.isupper()]
            patterns = [
                re.compile(_EDGE_L + f"(?:{_alternation(tickers)})" + _EDGE_R),
                re.compile(r"\$(?:" + _alternation(tickers) + ")" + _EDGE_R, re.IGNORECASE),
            ]
            if names:
                patterns.append(
                    re.compile(_EDGE_L + f"(?:{_alternation(names)})" + _EDGE_R, re.IGNORECASE)
                )
            if asset.asset_class is AssetClass.FOREX and len(asset.symbol) == 6:
                pair = f"{asset.symbol[:3]}/{asset.symbol[3:]}"
                patterns.append(re.compile(_EDGE_L + re.escape(pair) + _EDGE_R, re.IGNORECASE))
            self._matchers.append((asset.symbol, patterns))
            for label in (asset.symbol, asset.name, *asset.aliases):
                if label:
                    self._by_label.setdefault(label.upper(), asset.symbol)

    def tag(self, item: NewsItem) -> tuple[str, ...]:
        """Universe symbols the item is about, in universe order."""
        text = f"{item.title}\n{item.body}"
        own = {self._by_label.get(s.strip().lstrip("$").upper()) for s in item.symbols}
        return tuple(
            symbol
            for symbol, patterns in self._matchers
            if symbol in own or any(p.search(text) for p in patterns)
        )


def tag_symbols(item: NewsItem, assets: Sequence[Asset]) -> tuple[str, ...]:
    """Universe symbols ``item`` is about (see module doc for the rules)."""
    return SymbolTagger(assets).tag(item)


def scored_news_columns(topic_names: Sequence[str]) -> list[str]:
    return ["published_at", "symbol", "news_id", "score", *(f"topic_{t}" for t in topic_names)]


def score_news(
    items: Sequence[NewsItem], assets: Sequence[Asset], model: SentimentModel
) -> pd.DataFrame:
    """One row per (item, tagged symbol), sorted by ``published_at``.

    Columns: ``published_at`` (datetime64[ns, UTC]), ``symbol``, ``news_id``, ``score`` in
    [-1, 1], and ``topic_<name>`` in [0, 1] for each of ``model.topic_names``. Only tagged
    items are encoded; a repeated headline is encoded once (the model's cache).
    """
    tagger = SymbolTagger(assets)
    tagged = [(item, tagger.tag(item)) for item in items]
    tagged = [(item, symbols) for item, symbols in tagged if symbols]
    columns = scored_news_columns(model.topic_names)
    if not tagged:
        frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
        frame["published_at"] = pd.Series(dtype="datetime64[ns, UTC]")
        frame["symbol"] = pd.Series(dtype="object")
        frame["news_id"] = pd.Series(dtype="object")
        return frame[columns]
    texts = [item.text for item, _ in tagged]
    scores = model.score(texts)
    topics = model.topic_intensity(texts)
    rows: dict[str, list] = {c: [] for c in columns}
    for i, (item, symbols) in enumerate(tagged):
        for symbol in symbols:
            rows["published_at"].append(item.published_at)
            rows["symbol"].append(symbol)
            rows["news_id"].append(item.id)
            rows["score"].append(float(scores[i]))
            for j, name in enumerate(model.topic_names):
                rows[f"topic_{name}"].append(float(topics[i, j]))
    frame = pd.DataFrame(rows, columns=columns)
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True).astype(
        "datetime64[ns, UTC]"
    )
    frame = frame.sort_values(["published_at", "news_id", "symbol"], kind="stable")
    return frame.reset_index(drop=True)
