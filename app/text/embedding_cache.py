"""Encodings by text key: an in-memory LRU, optionally backed by a SQLite file across runs."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.text.encoder import Encoded


class EncodingCache:
    """LRU of encodings by text key, optionally backed by a SQLite file shared across runs.

    The namespace (the model's name) keeps encodings of different models apart on disk.
    """

    def __init__(self, namespace: str, max_entries: int = 200_000, path: Path | None = None):
        self.namespace = namespace
        self.max_entries = max_entries
        self._mem: OrderedDict[str, Encoded] = OrderedDict()
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS encodings (ns TEXT, key TEXT, emb BLOB, probs BLOB,"
                " PRIMARY KEY (ns, key))"
            )

    def __len__(self) -> int:
        return len(self._mem)

    def get(self, key: str) -> Encoded | None:
        hit = self._mem.get(key)
        if hit is not None:
            self._mem.move_to_end(key)
        elif self._db is not None:
            row = self._db.execute(
                "SELECT emb, probs FROM encodings WHERE ns = ? AND key = ?", (self.namespace, key)
            ).fetchone()
            if row is not None:
                probs = None if row[1] is None else np.frombuffer(row[1], dtype=np.float64)
                hit = Encoded(np.frombuffer(row[0], dtype=np.float32), probs)
                self._remember(key, hit)
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def put_many(self, items: Sequence[tuple[str, Encoded]]) -> None:
        for key, enc in items:
            self._remember(key, enc)
        if self._db is not None and items:
            self._db.executemany(
                "INSERT OR REPLACE INTO encodings VALUES (?, ?, ?, ?)",
                [
                    (
                        self.namespace,
                        key,
                        enc.embedding.astype(np.float32).tobytes(),
                        None if enc.probs is None else enc.probs.astype(np.float64).tobytes(),
                    )
                    for key, enc in items
                ],
            )
            self._db.commit()

    def _remember(self, key: str, enc: Encoded) -> None:
        self._mem[key] = enc
        self._mem.move_to_end(key)
        while len(self._mem) > self.max_entries:
            self._mem.popitem(last=False)
