"""News from RSS/Atom feeds and SEC EDGAR filing feeds, as ``NewsItem``s.

Bytes are fetched with the shared HTTP helper and parsed by feedparser, which normalises RSS
0.9x/1.0/2.0 and Atom and converts every entry date to UTC. Publication time = the entry's
``published`` date, else its ``updated`` date; an entry with neither is rejected
(``missing_ts``): a headline without a time cannot be placed causally.

EDGAR: a company's filing feed
(``https://www.sec.gov/cgi-bin/browse-edgar?action=getcompany&CIK=...&type=8-K&output=atom``)
or the latest-filings feed (``action=getcurrent``). Title = form type + company; the time is
the entry's ``updated`` (EDGAR's acceptance time, with its New York offset, here in UTC). SEC
asks every client to send a User-Agent naming a contact (``"Name email@example.com"``).
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import feedparser

from app.errors import InputError
from app.sources.http import HttpClient
from app.sources.side_batch import BadRow, SideBatch
from app.types import NewsItem

_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")
# latest-filings entry title: "8-K - APPLE INC (0000320193) (Filer)"
_EDGAR_TITLE_RE = re.compile(r"^\s*(?P<form>.+?)\s+-\s+(?P<company>.+?)\s+\((?P<cik>\d+)\)")


def plain_text(fragment: str) -> str:
    """HTML fragment -> one line of text (tags dropped, entities decoded, spaces collapsed)."""
    return _SPACE_RE.sub(" ", html.unescape(_TAG_RE.sub(" ", fragment or ""))).strip()


def struct_to_utc(value: time.struct_time | None) -> datetime | None:
    """feedparser's ``*_parsed`` (a UTC struct_time) -> aware datetime."""
    if value is None:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)


def _entry_time(entry: Mapping[str, Any]) -> datetime:
    for key in ("published_parsed", "updated_parsed"):
        ts = struct_to_utc(entry.get(key))
        if ts is not None:
            return ts
    if entry.get("published") or entry.get("updated"):
        raise BadRow("bad_ts")
    raise BadRow("missing_ts")


def _stable_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def parse_feed_document(content: bytes, where: str) -> feedparser.FeedParserDict:
    """feedparser's view of a document; InputError when it is no feed at all."""
    parsed = feedparser.parse(content)
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception", "no RSS/Atom root element")
        raise InputError(f"{where}: not an RSS/Atom feed ({problem})")
    return parsed


def parse_feed(
    content: bytes, *, where: str, source: str = "", symbols: Sequence[str] = ()
) -> SideBatch[NewsItem]:
    """Entries of an RSS/Atom document as NewsItems.

    ``source`` defaults to the feed's title; ``symbols`` are attached to every item (a feed
    about one company). The id is ``rss:`` + the entry's guid/id (prefixed with the feed name
    when it is a bare token like ``1234``, unique only within its feed), else its link, else a
    hash of title and time, so re-reading a feed gives the same ids.
    """
    parsed = parse_feed_document(content, where)
    name = source or plain_text(parsed.feed.get("title", "")) or where
    batch: SideBatch[NewsItem] = SideBatch(where)
    for entry in parsed.entries:
        batch.add(lambda e=entry: _rss_item(e, name, symbols))
    return batch


def _rss_item(entry: Mapping[str, Any], source: str, symbols: Sequence[str]) -> NewsItem:
    published = _entry_time(entry)
    title = plain_text(entry.get("title", ""))
    body = plain_text(entry.get("summary", ""))
    link = entry.get("link", "") or ""
    key = entry.get("id") or link or _stable_id(title, published.isoformat())
    if not any(c in key for c in ":/"):  # a bare guid like "1234" is unique to its feed only
        key = f"{source}:{key}"
    tags = [t.get("term", "") for t in entry.get("tags", []) if t.get("term")]
    return NewsItem(
        id=f"rss:{key}",
        published_at=published,
        source=source,
        title=title,
        body=body,
        symbols=tuple(symbols),
        url=link,
        topic=tags[0] if tags else "",
    )


def parse_edgar_feed(
    content: bytes, *, where: str, symbols: Sequence[str] = ()
) -> SideBatch[NewsItem]:
    """Filings of an EDGAR Atom feed: title ``"<form> <company>: <form name>"``, id
    ``edgar:<accession number>``, body = the items described and EDGAR's summary."""
    parsed = parse_feed_document(content, where)
    company = plain_text(parsed.feed.get("conformed-name", ""))
    batch: SideBatch[NewsItem] = SideBatch(where)
    for entry in parsed.entries:
        batch.add(lambda e=entry: _edgar_item(e, company, symbols))
    return batch


def _edgar_item(entry: Mapping[str, Any], company: str, symbols: Sequence[str]) -> NewsItem:
    published = _entry_time(entry)
    raw_title = plain_text(entry.get("title", ""))
    match = _EDGAR_TITLE_RE.match(raw_title)
    terms = [t.get("term", "") for t in entry.get("tags", []) if t.get("label") == "form type"]
    form = entry.get("filing-type") or (terms[0] if terms else "")
    if match:  # the latest-filings feed names the company in each title
        form = form or match["form"]
        company = company or match["company"]
    if not form:
        raise BadRow("missing_form_type")
    if not company:
        raise BadRow("missing_company")
    accession = entry.get("accession-number") or _accession_from_id(entry.get("id", ""))
    if not accession:
        raise BadRow("missing_accession")
    form_name = plain_text(entry.get("form-name", ""))
    title = f"{form} {company}" + (f": {form_name}" if form_name else "")
    parts = (plain_text(entry.get("items-desc", "")), plain_text(entry.get("summary", "")))
    body = "; ".join(p for p in parts if p)
    return NewsItem(
        id=f"edgar:{accession}",
        published_at=published,
        source="sec_edgar",
        title=title,
        body=body,
        symbols=tuple(symbols),
        url=entry.get("link", "") or entry.get("filing-href", ""),
        topic=f"filing_{form}",
    )


def _accession_from_id(entry_id: str) -> str:
    # urn:tag:sec.gov,2008:accession-number=0000320193-24-000069
    _, sep, value = entry_id.partition("accession-number=")
    return value.strip() if sep else ""


def fetch_feed(
    client: HttpClient, url: str, *, source: str = "", symbols: Sequence[str] = ()
) -> SideBatch[NewsItem]:
    """GET an RSS/Atom feed and parse it (see :func:`parse_feed`)."""
    return parse_feed(client.get_bytes(url), where=url, source=source, symbols=symbols)


def fetch_edgar_feed(
    client: HttpClient, url: str, *, symbols: Sequence[str] = ()
) -> SideBatch[NewsItem]:
    """GET an EDGAR filing Atom feed and parse it (see :func:`parse_edgar_feed`)."""
    return parse_edgar_feed(client.get_bytes(url), where=url, symbols=symbols)
