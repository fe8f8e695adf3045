"""reddit JSON listings and X recent search over loopback: mapping, paging, the bearer token."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from app.errors import InputError
from app.sources.http import HttpClient, HttpPolicy, RequestRejected
from app.sources.social import fetch_reddit_new, fetch_x_recent, x_bearer_token
from tests.unit.sources.side_loopback import Answer, LoopbackServer, json_answer

TOKEN = "AAAAAAAAAAAAAAAAAAAAAtest%2Ftoken"


def post(pid: str, created: object, title: str = "BTC to the moon", **kw: object) -> dict:
    data = {
        "id": pid,
        "name": f"t3_{pid}",
        "title": title,
        "selftext": "",
        "created_utc": created,
        "permalink": f"/r/CryptoCurrency/comments/{pid}/slug/",
        "subreddit": "CryptoCurrency",
        **kw,
    }
    return {"kind": "t3", "data": data}


def listing(children: list, after: str | None) -> dict:
    data = {"after": after, "dist": len(children), "children": children}
    return {"kind": "Listing", "data": data}


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


@pytest.fixture
def http():
    with HttpClient(HttpPolicy(timeout_s=2, retries=1, backoff_s=0)) as client:
        yield client


def test_reddit_listing_pages_are_followed_and_mapped(server, http):
    page1 = listing(
        [
            post("abc1", 1746165600.0, selftext="Long **post** body"),
            post("abc2", None),  # no time
            post("abc3", "yesterday"),  # unparseable time
        ],
        after="t3_abc3",
    )
    page2 = listing([post("abc4", 1746162000, title=""), {"kind": "t3"}], after="t3_abc4")
    server.route("/r/CryptoCurrency/new.json", json_answer(page1), json_answer(page2))
    batch = fetch_reddit_new(http, "r/CryptoCurrency", base_url=server.url, max_pages=2)
    hits = server.hits("/r/CryptoCurrency/new.json")
    assert [h.query.get("after") for h in hits] == [None, ["t3_abc3"]]
    assert hits[0].query["limit"] == ["100"]
    assert batch.rows_read == 5
    assert dict(batch.rejected) == {
        "missing_ts": 1,
        "bad_ts": 1,
        "empty_text": 1,
        "not_a_post": 1,
    }
    [item] = batch.items
    assert item.id == "reddit:abc1"
    assert item.published_at == datetime(2025, 5, 2, 6, 0, tzinfo=UTC)
    assert (item.title, item.body) == ("BTC to the moon", "Long **post** body")
    assert item.source == "reddit/r/CryptoCurrency"
    assert item.url == f"{server.url}/r/CryptoCurrency/comments/abc1/slug/"


def test_reddit_stops_when_there_is_no_next_page(server, http):
    server.route("/r/stocks/new.json", json_answer(listing([post("z", 1746165600)], None)))
    batch = fetch_reddit_new(http, "stocks", base_url=server.url, max_pages=5)
    assert len(batch.items) == 1 and len(server.requests) == 1


def test_x_search_sends_the_bearer_token_and_maps_tweets(server, http):
    page1 = {
        "data": [
            {"id": "1786", "text": "$AAPL record high", "created_at": "2025-05-02T13:31:05.000Z",
             "edit_history_tweet_ids": ["1786"]},
            {"id": "1787", "text": "no time here"},
            {"id": "1788", "text": "bad time", "created_at": "2nd of May"},
        ],
        "meta": {"newest_id": "1786", "oldest_id": "1788", "result_count": 3,
                 "next_token": "b26v89c19zqg8o3f"},
    }  # fmt: skip
    page2 = {
        "data": [{"id": "1790", "text": "$AAPL dips", "created_at": "2025-05-02T12:00:00.000Z"}],
        "meta": {"result_count": 1},
    }
    server.route("/2/tweets/search/recent", json_answer(page1), json_answer(page2))
    batch = fetch_x_recent(
        http, "$AAPL lang:en", token=TOKEN, base_url=server.url, max_pages=3, symbols=("AAPL",)
    )
    hits = server.hits("/2/tweets/search/recent")
    assert len(hits) == 2
    assert all(h.headers["Authorization"] == f"Bearer {TOKEN}" for h in hits)
    assert hits[0].query["query"] == ["$AAPL lang:en"]
    assert hits[0].query["tweet.fields"] == ["created_at"]
    assert hits[1].query["next_token"] == ["b26v89c19zqg8o3f"]
    assert dict(batch.rejected) == {"missing_ts": 1, "bad_ts": 1}
    assert [i.id for i in batch.items] == ["x:1786", "x:1790"]
    first = batch.items[0]
    assert first.published_at == datetime(2025, 5, 2, 13, 31, 5, tzinfo=UTC)
    assert (first.title, first.source, first.symbols) == ("$AAPL record high", "x", ("AAPL",))


def test_x_token_never_appears_in_logs_or_errors(server, http, caplog):
    server.route(
        "/2/tweets/search/recent",
        Answer(503),
        json_answer({"title": "Unauthorized", "type": "about:blank", "status": 401}, 401),
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RequestRejected) as err:
        fetch_x_recent(http, "btc", token=TOKEN, base_url=server.url)
    assert err.value.status == 401
    assert "/2/tweets/search/recent" in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text
    assert len(server.requests) == 2


def test_x_token_comes_from_the_environment():
    assert x_bearer_token({"X_BEARER_TOKEN": f" {TOKEN} "}) == TOKEN
    with pytest.raises(InputError, match="X_BEARER_TOKEN"):
        x_bearer_token({})


def test_bad_arguments_fail_before_any_request(http):
    with pytest.raises(InputError, match="query"):
        fetch_x_recent(http, "  ", token=TOKEN, base_url="http://127.0.0.1:9")
    with pytest.raises(InputError, match="subreddit"):
        fetch_reddit_new(http, "r/", base_url="http://127.0.0.1:9")
