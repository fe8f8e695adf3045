"""A feed's checkpoint file and its side log, on disk.

The checkpoint (``<name>.ckpt.json``) holds the feature states, windows, last ts per ticker
and counters; it is written atomically (temp file + rename). The side log
(``<name>.side.jsonl``) records every batch of side items the feed took since the checkpoint,
already scored, with each ticker's last bar ts at that moment; after a crash the feed replays
the store's bars and these batches in their original interleaving, so the restored feature
rows equal an uninterrupted run's. A checkpoint truncates the log; entries older than the
checkpoint (a crash between the two writes) are skipped by their sequence number.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.features.side_inputs import ScoredNews
from app.live.headlines import ScoredHeadline
from app.types import FlowPoint, MacroPoint

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class SideBatch:
    """Side items taken together (one flush), with the tickers' last bar ts (ns) then."""

    seq: int  # side items taken before this batch
    count: int  # side items in the batch (raw headlines count once, however tagged)
    after: dict[str, int | None]
    news: tuple[ScoredHeadline, ...] = ()
    macro: tuple[MacroPoint, ...] = ()
    flow: tuple[FlowPoint, ...] = ()
    polled: int = 0  # of ``count``, items a SideFeed polled (not from the replayed stream)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "count": self.count,
            "polled": self.polled,
            "after": self.after,
            "news": [_news(h) for h in self.news],
            "macro": [
                [m.name, m.ts.isoformat(), m.published_at.isoformat(), m.value] for m in self.macro
            ],  # fmt: skip
            "flow": [
                [f.symbol, f.kind, f.ts.isoformat(), f.published_at.isoformat(), f.value]
                for f in self.flow
            ],  # fmt: skip
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SideBatch:
        return cls(
            seq=int(d["seq"]),
            count=int(d["count"]),
            polled=int(d.get("polled", 0)),
            after=dict(d["after"]),
            news=tuple(_news_back(h) for h in d["news"]),
            macro=tuple(MacroPoint(n, _dt(t), _dt(p), float(v)) for n, t, p, v in d["macro"]),
            flow=tuple(FlowPoint(s, k, _dt(t), _dt(p), float(v)) for s, k, t, p, v in d["flow"]),
        )


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _news(h: ScoredHeadline) -> dict[str, Any]:
    n = h.news
    return {"published_at": n.published_at.isoformat(), "symbol": n.symbol,
            "news_id": n.news_id, "score": n.score, "topics": dict(n.topics),
            "impact": h.impact}  # fmt: skip


def _news_back(d: dict[str, Any]) -> ScoredHeadline:
    news = ScoredNews(_dt(d["published_at"]), d["symbol"], d["news_id"], d["score"], d["topics"])
    return ScoredHeadline(news, float(d["impact"]))


class CheckpointDir:
    """``folder/<name>.ckpt.json`` and ``folder/<name>.side.jsonl`` (name: the asset class)."""

    def __init__(self, folder: str | Path, name: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"{name}.ckpt.json"
        self.log_path = self.folder / f"{name}.side.jsonl"

    def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        state = json.loads(self.path.read_text())
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{self.path}: version {state.get('version')!r}, expected 1")
        return state

    def save(self, state: dict[str, Any]) -> Path:
        """Write atomically, then empty the side log (its entries are in the state now)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": CHECKPOINT_VERSION, **state}))
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.log_path.write_text("")
        return self.path

    def append(self, batch: SideBatch) -> None:
        with self.log_path.open("a") as fh:
            fh.write(json.dumps(batch.to_json()) + "\n")
            fh.flush()

    def batches(self, from_seq: int) -> list[SideBatch]:
        """Logged batches at or after ``from_seq``, in order; a torn last line is ignored
        (its items were never applied, so the source sends them again)."""
        if not self.log_path.is_file():
            return []
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                batch = SideBatch.from_json(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError):
                break
            if batch.seq >= from_seq:
                out.append(batch)
        return out
