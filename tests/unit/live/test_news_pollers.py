"""Headlines (RSS) and Fear & Greed (alternative.me) polled live: a loopback server speaking
both, ``SideFeed`` -> DuckDB ``news`` / ``macro`` -> a ``FeedWorker`` that scores the headlines;
each poll hands over only what is new, a restart nothing already stored, and an item reaches
the features only from its ``published_at``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from app.clock import ReplayClock
from app.config import load_settings
from app.live.feed import FeedWorker
from app.live.headlines import HeadlineScorer
from app.live.news_pollers import FearGreedPoller, NewsFeedPoller
from app.live.side_feed import SideFeed
from app.live.window_spec import WindowSpec
from app.sources.http import HttpClient, HttpPolicy
from app.store import open_store
from app.types import AssetClass, Bar, MacroPoint, NewsItem
from tests.builders import bars_frame
from tests.unit.live.live_builders import small_spec
from tests.unit.sources.side_loopback import LoopbackServer, json_answer, text_answer
from tests.unit.text.sentiment_helpers import minilm

T0 = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)


def _rss(*items: tuple[str, str, datetime]) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><guid>{g}</guid>"
        f"<pubDate>{p.strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate></item>"
        for g, t, p in items
    )
    doc = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{body}'
    return (doc + "</channel></rss>").encode()


def _fng(*rows: tuple[datetime, int]) -> dict:
    data = [{"value": str(v), "timestamp": str(int(p.timestamp()))} for p, v in rows]
    return {"data": data, "metadata": {"error": None}}


A = ("w-1", "Bitcoin plunges as exchange hack wipes out reserves", T0 + timedelta(minutes=7))
B = ("w-2", "Bitcoin rallies to a record high", T0 + timedelta(minutes=31))
FNG_1 = (T0 - timedelta(hours=10), 30)
FNG_2 = (T0 + timedelta(minutes=20), 70)


def _server() -> LoopbackServer:
    server = LoopbackServer()
    server.route("/wire.xml", text_answer(_rss(A, B), "application/rss+xml"),
                 text_answer(_rss(A, B), "application/rss+xml"))  # fmt: skip
    server.route("/fng/", json_answer(_fng(FNG_1)), json_answer(_fng(FNG_2, FNG_1)))
    return server


def _pollers(client: HttpClient, url: str) -> list:
    return [
        NewsFeedPoller(client, [f"{url}/wire.xml"], every=timedelta(minutes=5)),
        FearGreedPoller(client, AssetClass.CRYPTO, url, every=timedelta(minutes=5)),
    ]


def _bars(n: int) -> list[Bar]:
    frame = bars_frame(n=n, symbol="BTCUSDT", start=T0 - timedelta(minutes=5) * (n - 12))
    cols = ["open", "high", "low", "close", "volume"]
    return [
        Bar("BTCUSDT", ts.to_pydatetime(), *(float(row[c]) for c in cols))
        for ts, (_, row) in zip(frame["ts"], frame.iterrows(), strict=True)
    ]


def test_polls_hand_over_only_new_items_and_resume_from_the_store(tmp_path) -> None:
    store = open_store(f"duckdb:///{tmp_path}/feed.db")
    client = HttpClient(HttpPolicy(timeout_s=5.0, retries=0))
    with _server() as server:
        clock = ReplayClock(T0 + timedelta(minutes=10))
        side = SideFeed(_pollers(client, server.url), store, clock)
        first = side.poll_due()  # B and FNG_2 are not published yet
        assert {getattr(i, "id", None) or i.value for i in first} == {30.0, "rss:Wire:w-1"}
        clock.advance_to(T0 + timedelta(minutes=40))
        second = side.poll_due()  # the feed and the index repeat their old entries
        assert [(type(i), getattr(i, "id", None)) for i in second] == [
            (NewsItem, "rss:Wire:w-2"), (MacroPoint, None)
        ]  # fmt: skip
        assert [p.value for p in second if isinstance(p, MacroPoint)] == [70.0]
        assert set(store.read("news")["id"]) == {"rss:Wire:w-1", "rss:Wire:w-2"}
        assert sorted(store.read("macro", "fear_greed_crypto")["value"]) == [30.0, 70.0]
        restarted = SideFeed(_pollers(client, server.url), store, clock)
        assert restarted.poll_due() == []  # a new process: everything is in the store
    client.close()


def test_polled_headlines_are_scored_and_applied_from_their_publication(tmp_path) -> None:
    store = open_store(f"duckdb:///{tmp_path}/feed.db")
    client = HttpClient(HttpPolicy(timeout_s=5.0, retries=0))
    window = WindowSpec.for_spec(small_spec(), 8)
    bars = _bars(24)
    with _server() as server:
        clock = ReplayClock(bars[0].ts)
        side = SideFeed(_pollers(client, server.url), store, clock)
        scorer = HeadlineScorer(minilm(), load_settings().universe)
        worker = FeedWorker("crypto", ["BTCUSDT"], window, store, scorer=scorer,
                            side=side, keep_rows=True)  # fmt: skip
        for bar in bars:
            worker.on_bar(bar)
    client.close()
    assert scorer.batches >= 2 and worker.side_polled == 4  # A, B, FNG_1, FNG_2
    col = window.feature_names.index("news_intensity")
    fng = window.feature_names.index("fear_greed")
    rows = {
        pd.Timestamp(ns, tz="UTC") + timedelta(minutes=5): r for ns, r in worker.rows["BTCUSDT"]
    }
    before = [r[col] for close, r in rows.items() if close < A[2]]
    after = [r[col] for close, r in rows.items() if close >= A[2]]
    assert before and all(v == 0 for v in before) and after and all(v > 0 for v in after)
    values = {close: round(float(r[fng]), 6) for close, r in rows.items()}  # (v - 50) / 50
    assert {v for c, v in values.items() if c < FNG_2[0]} == {-0.4}
    assert {v for c, v in values.items() if c >= FNG_2[0]} == {0.4}


def test_venue_feeds_poll_news_and_fear_greed_only_when_configured() -> None:
    from app.live.venue_feeds import _news_pollers

    window = WindowSpec.for_spec(small_spec(), 8)
    settings = load_settings()
    assert _news_pollers(settings, window, []) == []  # the defaults: none
    on = settings.model_copy(update={"live_news": settings.live_news.model_copy(
        update={"rss_urls": ("http://127.0.0.1:9/wire.xml",), "fear_greed": True})})  # fmt: skip
    closers: list = []
    pollers = _news_pollers(on, window, closers)
    assert [type(p) for p in pollers] == [NewsFeedPoller, FearGreedPoller] and len(closers) == 1
    assert pollers[1].series == "fear_greed_crypto"
    for close in closers:
        close()


def test_a_venue_feed_scores_its_polled_headlines_when_a_poller_runs(tmp_path) -> None:
    from app.live.venue_feeds import headline_scorer

    window = WindowSpec.for_spec(small_spec(), 8)
    settings = load_settings(registry_dir=tmp_path / "registry")
    assert headline_scorer(settings, window) is None  # the defaults: no headline poller
    on = settings.model_copy(update={"live_news": settings.live_news.model_copy(
        update={"rss_urls": ("http://127.0.0.1:9/wire.xml",)})})  # fmt: skip
    scorer = headline_scorer(on, window)
    assert isinstance(scorer, HeadlineScorer) and scorer.impact is window.impact_model
    assert {a.symbol for a in scorer.assets} == {a.symbol for a in settings.universe}
    item = NewsItem("n-1", T0, "wire", "Bitcoin plunges as exchange hack wipes out reserves")
    [row] = scorer.score([item])
    assert row.news.symbol == "BTCUSDT" and row.news.score < 0  # tagged and scored
