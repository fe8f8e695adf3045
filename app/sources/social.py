"""Posts from reddit (public JSON listing) and X (API v2 recent search), as ``NewsItem``s.

reddit: ``GET {base}/r/<sub>/new.json?limit=100[&after=<fullname>]`` answers a Listing,
``data.children[].data`` with ``id, title, selftext, created_utc`` (epoch seconds, UTC) and
``permalink``. Publication time = ``created_utc``. reddit wants a descriptive User-Agent.

X: ``GET {base}/2/tweets/search/recent?query=...&tweet.fields=created_at&max_results=100
[&next_token=...]`` with ``Authorization: Bearer <token>``; the token is read from the
environment variable ``X_BEARER_TOKEN`` and goes only into that header (never a log line or an
error message). Publication time = ``created_at`` (ISO-8601 UTC).

Both follow their cursor for at most ``max_pages`` pages, so one run is bounded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from app.errors import InputError
from app.sources import SourceUnavailable
from app.sources.http import HttpClient
from app.sources.side_batch import BadRow, SideBatch
from app.types import NewsItem

REDDIT_BASE_URL = "https://www.reddit.com"
X_BASE_URL = "https://api.x.com"
X_TOKEN_ENV = "X_BEARER_TOKEN"  # noqa: S105 - the variable's name, not a token


# --------------------------------------------------------------------------- reddit


def parse_reddit_listing(
    payload: Any, *, where: str, subreddit: str, base_url: str, symbols: Sequence[str] = ()
) -> tuple[SideBatch[NewsItem], str | None]:
    """(posts of one Listing page, the ``after`` cursor of the next page or None)."""
    try:
        data = payload["data"]
        children = data["children"]
    except (KeyError, TypeError):
        raise SourceUnavailable(f"{where}: not a reddit Listing (no data.children)") from None
    batch: SideBatch[NewsItem] = SideBatch(where)
    for child in children:
        batch.add(lambda c=child: _reddit_item(c, subreddit, base_url, symbols))
    after = data.get("after")
    return batch, after if isinstance(after, str) and after else None


def _reddit_item(child: Any, subreddit: str, base_url: str, symbols: Sequence[str]) -> NewsItem:
    post = child.get("data") if isinstance(child, Mapping) else None
    if not isinstance(post, Mapping):
        raise BadRow("not_a_post")
    post_id = str(post.get("id") or "").strip()
    if not post_id:
        raise BadRow("missing_id")
    created = post.get("created_utc")
    if created is None:
        raise BadRow("missing_ts")
    try:
        seconds = float(created)
    except (TypeError, ValueError):
        raise BadRow("bad_ts") from None
    if not math.isfinite(seconds):
        raise BadRow("bad_ts")
    permalink = str(post.get("permalink") or "")
    return NewsItem(
        id=f"reddit:{post_id}",
        published_at=datetime.fromtimestamp(seconds, tz=UTC),
        source=f"reddit/r/{subreddit}",
        title=str(post.get("title") or "").strip(),
        body=str(post.get("selftext") or "").strip(),
        symbols=tuple(symbols),
        url=f"{base_url.rstrip('/')}{permalink}" if permalink.startswith("/") else permalink,
    )


def fetch_reddit_new(
    client: HttpClient,
    subreddit: str,
    *,
    base_url: str = REDDIT_BASE_URL,
    limit: int = 100,
    max_pages: int = 1,
    symbols: Sequence[str] = (),
) -> SideBatch[NewsItem]:
    """Newest posts of ``r/<subreddit>``, following ``after`` for up to ``max_pages`` pages."""
    sub = subreddit.strip().removeprefix("r/").strip("/")
    if not sub:
        raise InputError(f"subreddit={subreddit!r}: empty")
    if not 1 <= limit <= 100:
        raise InputError(f"limit={limit}: reddit serves 1..100 posts per page")
    url = f"{base_url.rstrip('/')}/r/{sub}/new.json"
    total: SideBatch[NewsItem] = SideBatch(url)
    after: str | None = None
    for _ in range(max(1, max_pages)):
        params: dict[str, str | int] = {"limit": limit, "raw_json": 1}
        if after:
            params["after"] = after
        page, after = parse_reddit_listing(
            client.get_json(url, params=params),
            where=url,
            subreddit=sub,
            base_url=base_url,
            symbols=symbols,
        )
        total.extend(page)
        if after is None:
            break
    return total


# --------------------------------------------------------------------------- X


def x_bearer_token(environ: Mapping[str, str] | None = None) -> str:
    """The X API token from ``X_BEARER_TOKEN``; InputError when it is missing."""
    token = (environ if environ is not None else os.environ).get(X_TOKEN_ENV, "").strip()
    if not token:
        raise InputError(
            f"the X source needs an API bearer token in the environment variable {X_TOKEN_ENV}"
        )
    return token


def parse_x_search(
    payload: Any, *, where: str, symbols: Sequence[str] = ()
) -> tuple[SideBatch[NewsItem], str | None]:
    """(tweets of one search page, the ``meta.next_token`` or None)."""
    if not isinstance(payload, Mapping):
        raise SourceUnavailable(f"{where}: not an X API answer (expected a JSON object)")
    batch: SideBatch[NewsItem] = SideBatch(where)
    for tweet in payload.get("data") or []:
        batch.add(lambda t=tweet: _x_item(t, symbols))
    meta = payload.get("meta") or {}
    token = meta.get("next_token") if isinstance(meta, Mapping) else None
    return batch, token if isinstance(token, str) and token else None


def _x_item(tweet: Any, symbols: Sequence[str]) -> NewsItem:
    if not isinstance(tweet, Mapping):
        raise BadRow("not_a_tweet")
    tweet_id = str(tweet.get("id") or "").strip()
    if not tweet_id:
        raise BadRow("missing_id")
    created = tweet.get("created_at")
    if not created:
        raise BadRow("missing_ts")
    try:
        published = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        raise BadRow("bad_ts") from None
    if published.tzinfo is None:
        raise BadRow("bad_ts")
    return NewsItem(
        id=f"x:{tweet_id}",
        published_at=published.astimezone(UTC),
        source="x",
        title=str(tweet.get("text") or "").strip(),
        symbols=tuple(symbols),
        url=f"https://x.com/i/web/status/{tweet_id}",
    )


def fetch_x_recent(
    client: HttpClient,
    query: str,
    *,
    token: str,
    base_url: str = X_BASE_URL,
    max_results: int = 100,
    max_pages: int = 1,
    symbols: Sequence[str] = (),
) -> SideBatch[NewsItem]:
    """Tweets matching ``query`` from the last 7 days (X's recent search), newest first."""
    if not query.strip():
        raise InputError("query='': the X recent search needs a query, e.g. '$AAPL lang:en'")
    if not 10 <= max_results <= 100:
        raise InputError(f"max_results={max_results}: X serves 10..100 tweets per page")
    url = f"{base_url.rstrip('/')}/2/tweets/search/recent"
    headers = {"Authorization": f"Bearer {token}"}
    total: SideBatch[NewsItem] = SideBatch(url)
    next_token: str | None = None
    for _ in range(max(1, max_pages)):
        params: dict[str, str | int] = {
            "query": query,
            "tweet.fields": "created_at",
            "max_results": max_results,
        }
        if next_token:
            params["next_token"] = next_token
        page, next_token = parse_x_search(
            client.get_json(url, params=params, headers=headers), where=url, symbols=symbols
        )
        total.extend(page)
        if next_token is None:
            break
    return total
