"""The paper venue's memory on disk: a snapshot plus an append-only log of the calls after it.

Rewriting the whole state (price history and fills included) after every call made each bar of
each ticker O(history): a third of a bar close's time. Now each state-changing call (a
submit, a cancel, a bar) appends one JSON line and flushes it before the call returns; the
paper venue is deterministic, so replaying those calls on the snapshot rebuilds the state
exactly. A snapshot (atomic replace, carrying the sequence number of the last call it holds) is
written every ``snapshot_every`` calls and on close; the log is then emptied. A crash between
the two leaves lines the snapshot already holds: they are skipped by their sequence number. A
torn last line is a call that never returned (its caller saw no answer) and is dropped.
Floats go through ``repr`` (JSON), so they round-trip exactly.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from app.broker.protocol import VenueOrder
from app.types import Bar, Fill, Order, OrderStatus, OrderType, Side

STATE_VERSION = 1
SNAPSHOT_EVERY = 5000


def order_json(o: Order) -> dict:
    d = {k: getattr(o, k) for k in Order.__slots__}
    d["side"], d["type"], d["ts"] = o.side.value, o.type.value, o.ts.isoformat()
    return d


def order_from(d: dict) -> Order:
    return Order(
        **{
            **d,
            "side": Side(d["side"]),
            "type": OrderType(d["type"]),
            "ts": datetime.fromisoformat(d["ts"]),
        }
    )


def venue_json(v: VenueOrder) -> dict:
    d = {k: getattr(v, k) for k in VenueOrder.__slots__}
    d["side"], d["status"], d["type"] = v.side.value, v.status.value, v.type.value
    d["ts"] = v.ts.isoformat() if v.ts is not None else None
    return d


def venue_from(d: dict) -> VenueOrder:
    return VenueOrder(
        **{
            **d,
            "side": Side(d["side"]),
            "status": OrderStatus(d["status"]),
            "type": OrderType(d["type"]),
            "ts": datetime.fromisoformat(d["ts"]) if d["ts"] else None,
        }
    )


def fill_json(f: Fill) -> dict:
    d = {k: getattr(f, k) for k in Fill.__slots__}
    d["side"], d["ts"] = f.side.value, f.ts.isoformat()
    return d


def fill_from(d: dict) -> Fill:
    return Fill(**{**d, "side": Side(d["side"]), "ts": datetime.fromisoformat(d["ts"])})


def bar_json(b: Bar) -> dict:
    return {
        "symbol": b.symbol,
        "ts": b.ts.isoformat(),
        "open": b.open,
        "high": b.high,
        "low": b.low,
        "close": b.close,
        "volume": b.volume,
    }


def bar_from(d: dict) -> Bar:
    return Bar(**{**d, "ts": datetime.fromisoformat(d["ts"])})


class StateLog:
    """``<state>.json`` (the snapshot) and ``<state>.ops.jsonl`` (the calls after it)."""

    def __init__(self, path: str | Path, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every={snapshot_every!r}: must be >= 1")
        self.path = Path(path)
        self.ops_path = self.path.with_suffix(".ops.jsonl")
        self.snapshot_every = snapshot_every
        self.seq = 0  # the last call stored (snapshot or log)
        self.since_snapshot = 0
        self._fh: IO[str] | None = None

    def load(self) -> tuple[dict | None, list[dict]]:
        """The snapshot (None: none yet) and the logged calls after it, in order."""
        state = None
        if self.path.exists():
            state = json.loads(self.path.read_text())
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"{self.path}: paper state version {state.get('version')!r}")
            self.seq = int(state.get("log_seq", 0))
        ops: list[dict] = []
        if self.ops_path.exists():
            lines = self.ops_path.read_text().splitlines()
            for i, line in enumerate(lines):
                try:
                    op = json.loads(line)
                except json.JSONDecodeError:
                    if i == len(lines) - 1:
                        break  # torn by a crash mid-write: that call never returned
                    raise ValueError(f"{self.ops_path}: line {i + 1} is not JSON") from None
                if op["seq"] > self.seq:
                    if op["seq"] != self.seq + 1:
                        raise ValueError(
                            f"{self.ops_path}: line {i + 1} seq={op['seq']}, want {self.seq + 1}"
                        )
                    ops.append(op)
                    self.seq = op["seq"]
        self.since_snapshot = len(ops)
        return state, ops

    def append(self, op: dict[str, Any]) -> None:
        """Store one call (flushed to the OS before returning)."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.ops_path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self.seq += 1
        self._fh.write(json.dumps({"seq": self.seq, **op}) + "\n")
        self._fh.flush()
        self.since_snapshot += 1

    @property
    def due(self) -> bool:
        return self.since_snapshot >= self.snapshot_every

    def snapshot(self, state: dict[str, Any]) -> None:
        """Replace the snapshot atomically with ``state`` (through call ``seq``), empty the log."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**state, "version": STATE_VERSION, "log_seq": self.seq}))
        os.replace(tmp, self.path)  # a crash leaves the old or the new snapshot
        self.close()
        with open(self.ops_path, "w", encoding="utf-8"):
            pass  # lines up to seq are in the snapshot; a crash before this skips them on load
        self.since_snapshot = 0

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
