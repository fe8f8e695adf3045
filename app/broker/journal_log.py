"""The journal's write-ahead log: the rows of each flush as one fsynced JSON line.

A store write costs 3-10 ms even for one row (DuckDB's commit; an HTTP round trip for
QuestDB), and the money-path rule asks for one before every venue call: a bar close that
closes ten positions made ~30 of them (bench/bar_close.py's p99). Appending a line and
``fsync`` costs ~0.3 ms here. The store gets the rows once per bar close (``Journal.sync``),
after which the log is emptied; a restart writes the lines still in the log to the store
before reading it back (``Journal.load``). A torn last line is a flush that never returned
(its venue call was not made) and is dropped. Timestamps travel as ISO strings, floats
through ``repr`` (JSON): they round-trip exactly, NaN included.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import IO

Rows = dict[str, list[dict]]  # table -> rows, as Journal buffers them


def _encode(value: object) -> object:
    return {"$ts": value.isoformat()} if isinstance(value, datetime) else value


def _decode(value: object) -> object:
    if isinstance(value, dict) and "$ts" in value:
        return datetime.fromisoformat(value["$ts"])
    return value


class JournalLog:
    """Append-only, fsynced lines of journal rows; read back and cleared by the journal."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = None

    def append(self, rows: Rows) -> None:
        """One line for this flush, on disk before the call returns."""
        if self._fh is None:
            self._fh = self.path.open("a", encoding="utf-8")
        line = {t: [{k: _encode(v) for k, v in r.items()} for r in rs] for t, rs in rows.items()}
        self._fh.write(json.dumps(line) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def read(self) -> list[Rows]:
        """Every complete line, oldest first (a torn last line is dropped)."""
        if not self.path.exists():
            return []
        out: list[Rows] = []
        for text in self.path.read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                break  # the flush that never returned: nothing after it was written
            out.append(
                {t: [{k: _decode(v) for k, v in r.items()} for r in rs] for t, rs in line.items()}
            )
        return out

    def clear(self) -> None:
        """Empty the log (its rows are in the store)."""
        self.close()
        with self.path.open("w", encoding="utf-8") as fh:
            fh.flush()
            os.fsync(fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
