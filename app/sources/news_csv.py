"""Replay news from CSV files as ``NewsItem``s, in publication order.

Three layouts, told apart by their header:
- ``cryptonews``: ``ts,source,subject,title,text,url,...`` (../shared/data/news_crypto_cryptonews;
  minute timestamps without a zone, UTC by the checks in SOURCES.md);
- ``stocknet``: ``ts,ticker,tweet_id,text,...`` (../shared/data/news_stocknet_tweets);
- ``sim``: the simulator's ``news.csv`` (``id,published_at,source,title,body,symbols,topic,
  true_sentiment``, symbols ``|``-joined).

A bad row (no usable time, no text, a bad sentiment) is rejected and counted by reason; the
good rows are kept. A file whose header fits no layout is an InputError.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from app.errors import InputError
from app.types import InvalidField, NewsItem

NewsFormat = Literal["auto", "cryptonews", "stocknet", "sim"]

REQUIRED_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "sim": ("id", "published_at", "source", "title", "body", "symbols", "topic", "true_sentiment"),
    "cryptonews": ("ts", "source", "subject", "title", "text"),
    "stocknet": ("ts", "ticker", "tweet_id", "text"),
}

# CryptoNews ``subject`` values that name one coin: the item is about that coin even when the
# headline never spells it out. Symbols are matched to the universe by the tagger.
CRYPTO_SUBJECT_SYMBOLS: Mapping[str, tuple[str, ...]] = {
    "bitcoin": ("BTC",),
    "ethereum": ("ETH",),
}


@dataclass
class NewsLoad:
    """What a replay file gave: items sorted by ``published_at``, and what was rejected."""

    path: str
    format: str
    items: list[NewsItem]
    n_rows: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, object]:
        return {
            "path": self.path,
            "format": self.format,
            "rows": self.n_rows,
            "items": len(self.items),
            "rejected": dict(self.rejected),
        }


class _BadRow(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_utc(value: str) -> datetime:
    """ISO time -> aware UTC; a value without a zone is taken as UTC (the documented sources)."""
    text = value.strip()
    if not text:
        raise _BadRow("missing_ts")
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise _BadRow("bad_ts") from None
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def _stable_id(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
    return f"{prefix}:{digest}"


def _cryptonews_row(row: Mapping[str, str]) -> NewsItem:
    published = parse_utc(row["ts"])
    title, body = row["title"].strip(), row["text"].strip()
    subject = row["subject"].strip().lower()
    return NewsItem(
        id=_stable_id("cryptonews", row["ts"], title, row.get("url") or ""),
        published_at=published,
        source=row["source"].strip() or "cryptonews",
        title=title,
        body=body,
        symbols=CRYPTO_SUBJECT_SYMBOLS.get(subject, ()),
        url=(row.get("url") or "").strip(),
        topic=subject,
    )


def _stocknet_row(row: Mapping[str, str]) -> NewsItem:
    ticker = row["ticker"].strip().upper()
    tweet_id = row["tweet_id"].strip()
    if not ticker:
        raise _BadRow("missing_ticker")
    if not tweet_id:
        raise _BadRow("missing_id")
    return NewsItem(
        id=f"stocknet:{ticker}:{tweet_id}",
        published_at=parse_utc(row["ts"]),
        source="stocknet_twitter",
        title=row["text"].strip(),
        symbols=(ticker,),
    )


def _sim_row(row: Mapping[str, str]) -> NewsItem:
    raw = row["true_sentiment"].strip()
    try:
        true_sentiment = float(raw) if raw else None
    except ValueError:
        raise _BadRow("bad_true_sentiment") from None
    return NewsItem(
        id=row["id"].strip(),
        published_at=parse_utc(row["published_at"]),
        source=row["source"].strip(),
        title=row["title"].strip(),
        body=row["body"].strip(),
        symbols=tuple(s for s in row["symbols"].split("|") if s.strip()),
        topic=row["topic"].strip(),
        true_sentiment=true_sentiment,
    )


_PARSERS: Mapping[str, Callable[[Mapping[str, str]], NewsItem]] = {
    "sim": _sim_row,
    "cryptonews": _cryptonews_row,
    "stocknet": _stocknet_row,
}


def detect_format(header: list[str], path: Path) -> str:
    for name, required in REQUIRED_COLUMNS.items():
        if all(c in header for c in required):
            return name
    raise InputError(
        f"{path}: columns {header!r} fit no news layout "
        + "; ".join(f"{k}: {','.join(v)}" for k, v in REQUIRED_COLUMNS.items())
    )


def read_news_csv(path: Path | str, fmt: NewsFormat = "auto") -> NewsLoad:
    """Read one replay file into items sorted by ``published_at`` (then id)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"news file {path} does not exist")
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        name = detect_format(header, path) if fmt == "auto" else fmt
        missing = [c for c in REQUIRED_COLUMNS[name] if c not in header]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing} for format {name!r}")
        load = NewsLoad(str(path), name, [])
        parse = _PARSERS[name]
        seen: set[str] = set()
        for row in reader:
            load.n_rows += 1
            if None in row:  # more fields than the header: a broken line
                load.rejected["extra_fields"] += 1
                continue
            try:
                item = parse({k: (v or "") for k, v in row.items()})
            except _BadRow as bad:
                load.rejected[bad.reason] += 1
                continue
            except InvalidField as bad:
                load.rejected[bad.reason] += 1
                continue
            if item.id in seen:
                load.rejected["duplicate_id"] += 1
                continue
            seen.add(item.id)
            load.items.append(item)
    load.items.sort(key=lambda n: (n.published_at, n.id))
    return load


def iter_news(
    load: NewsLoad, start: datetime | None = None, end: datetime | None = None
) -> Iterator[NewsItem]:
    """Items with ``start <= published_at < end``, in publication order (a replay window)."""
    for item in load.items:
        if start is not None and item.published_at < start:
            continue
        if end is not None and item.published_at >= end:
            break
        yield item
