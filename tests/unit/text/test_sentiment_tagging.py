"""Symbol tagging rules and the pinned scored-news frame (real tiny classifier, no download)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from app.config import Asset, SentimentSettings
from app.text.sentiment import SentimentModel
from app.text.tagging import SymbolTagger, score_news, tag_symbols
from app.types import AssetClass, NewsItem
from tests.unit.text.sentiment_helpers import write_tiny_classifier

T0 = datetime(2025, 1, 6, 14, 0, tzinfo=UTC)
ASSETS = (
    Asset(symbol="BTCUSDT", asset_class=AssetClass.CRYPTO, name="Bitcoin", aliases=("BTC",)),
    Asset(symbol="ETHUSDT", asset_class=AssetClass.CRYPTO, name="Ethereum", aliases=("ETH",)),
    Asset(symbol="AAPL", asset_class=AssetClass.STOCKS, name="Apple"),
    Asset(symbol="EURUSD", asset_class=AssetClass.FOREX, name="Euro"),
)


def news(title: str, body: str = "", symbols: tuple[str, ...] = (), i: int = 0) -> NewsItem:
    return NewsItem(
        id=f"n{i}",
        published_at=T0 + timedelta(minutes=i),
        source="test",
        title=title,
        body=body,
        symbols=symbols,
    )


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("AAPL rises in early trade", ("AAPL",)),
        ("aapl rises in early trade", ()),  # tickers are case-sensitive
        ("Buying $aapl and $BTC today", ("BTCUSDT", "AAPL")),  # cashtags in any case
        ("Apple unveils a new iPhone", ("AAPL",)),
        ("apple supplier warns on demand", ("AAPL",)),  # names are case-insensitive
        ("Pineapple prices soar", ()),  # word boundary
        ("Snapple AAPLX fund", ()),
        ("BTC breaks 100k", ("BTCUSDT",)),
        ("btc breaks 100k", ()),  # an upper-case alias is a ticker: case-sensitive
        ("Bitcoin's rally continues", ("BTCUSDT",)),
        ("BTCUSDT perpetual funding flips", ("BTCUSDT",)),
        ("ETH/BTC ratio climbs", ("BTCUSDT", "ETHUSDT")),
        ("Ethereum upgrade goes live; ETHW token slides", ("ETHUSDT",)),
        ("EUR/USD slips after ECB", ("EURUSD",)),
        ("The euro weakens against the dollar", ("EURUSD",)),
        ("Eurozone growth stalls", ()),
        ("Nothing to see here", ()),
    ],
)
def test_tagging_rules(title: str, expected: tuple[str, ...]) -> None:
    assert tag_symbols(news(title), ASSETS) == expected


def test_tagging_reads_body_and_the_items_own_symbols() -> None:
    tagger = SymbolTagger(ASSETS)
    assert tagger.tag(news("Markets wrap", body="Apple led the gains")) == ("AAPL",)
    assert tagger.tag(news("Markets wrap", symbols=("BTC",))) == ("BTCUSDT",)
    assert tagger.tag(news("Markets wrap", symbols=("$ethusdt",))) == ("ETHUSDT",)
    assert tagger.tag(news("Markets wrap", symbols=("TSLA",))) == ()  # not in the universe


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> SentimentModel:
    folder = write_tiny_classifier(tmp_path_factory.mktemp("tiny") / "bert")
    settings = SentimentSettings(model=str(folder), topics=("earnings", "security_breach"))
    return SentimentModel.load(settings, device="cpu")


def test_score_news_frame_follows_the_pinned_interface(tiny_model: SentimentModel) -> None:
    items = [
        news("Apple profit rose, shares rose", i=3),
        news("Bitcoin hack: shares fell", body="ETH too", i=1),
        news("Nothing tagged here", i=2),
        news("Apple profit rose, shares rose", i=0),  # same headline, earlier
    ]
    frame = score_news(items, ASSETS, tiny_model)
    assert list(frame.columns) == [
        "published_at",
        "symbol",
        "news_id",
        "score",
        "topic_earnings",
        "topic_security_breach",
    ]
    assert str(frame["published_at"].dtype) == "datetime64[ns, UTC]"
    assert frame[["news_id", "symbol"]].values.tolist() == [
        ["n0", "AAPL"],
        ["n1", "BTCUSDT"],
        ["n1", "ETHUSDT"],
        ["n3", "AAPL"],
    ]
    assert frame["published_at"].is_monotonic_increasing
    assert frame["score"].between(-1, 1).all()
    assert frame.filter(like="topic_").stack().between(0, 1).all()
    # one item, two symbols: the same score; the repeated headline: the same score
    assert frame.loc[1, "score"] == frame.loc[2, "score"]
    assert frame.loc[0, "score"] == frame.loc[3, "score"]
    expected = tiny_model.score([items[0].text, items[1].text])
    np.testing.assert_allclose(frame["score"].to_numpy()[[0, 1]], expected)


def test_score_news_encodes_each_distinct_tagged_text_once(tmp_path) -> None:
    folder = write_tiny_classifier(tmp_path / "bert")
    model = SentimentModel.load(SentimentSettings(model=str(folder), topics=()), device="cpu")
    items = [news("Apple shares rose", i=i) for i in range(5)] + [news("untagged", i=9)]
    frame = score_news(items, ASSETS, model)
    assert len(frame) == 5 and model.encoder.texts_encoded == 1
    score_news(items, ASSETS, model)
    assert model.encoder.texts_encoded == 1


def test_score_news_with_nothing_tagged_is_an_empty_typed_frame(
    tiny_model: SentimentModel,
) -> None:
    frame = score_news([news("Nothing here")], ASSETS, tiny_model)
    assert frame.empty
    assert list(frame.columns)[:4] == ["published_at", "symbol", "news_id", "score"]
    assert isinstance(frame["published_at"].dtype, pd.DatetimeTZDtype)
