"""The signals this panel has seen, so the candlestick can show more than the latest one.

The API serves only each ticker's latest signal; the panel keeps every distinct
``(ticker, as_of)`` it has read (bounded per ticker, oldest dropped). It starts empty when the
panel starts: the chart says "signals seen by the panel", not the run's full history.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

Json = dict[str, Any]


class SignalHistory:
    def __init__(self, max_per_ticker: int = 500) -> None:
        if max_per_ticker < 1:
            raise ValueError(f"max_per_ticker={max_per_ticker!r}: must be >= 1")
        self.max_per_ticker = max_per_ticker
        self._rows: dict[str, OrderedDict[str, Json]] = {}
        self._lock = threading.Lock()

    def add(self, signals: Sequence[Json]) -> None:
        with self._lock:
            for s in signals:
                rows = self._rows.setdefault(s["ticker"], OrderedDict())
                rows[str(s["as_of"])] = s  # a re-read of the same bar replaces it
                while len(rows) > self.max_per_ticker:
                    rows.popitem(last=False)

    def of(self, ticker: str) -> list[Json]:
        with self._lock:
            return list(self._rows.get(ticker, {}).values())
