"""Incremental twin of ``app.text.impact.impact_columns``: decayed sums of predicted impact.

A headline's impact counts from the first bar whose close reaches its ``published_at``, decayed
from its publication to that close, then by ``2**(-dt/half_life)`` per bar, which is the
recursion ``decayed_cumulative`` evaluates in closed form for the batch columns.
"""

from __future__ import annotations

import heapq
from typing import Any

from app.text.impact import IMPACT_HALF_LIVES_MIN, MINUTE_NS


class ImpactState:
    """The ``news_impact_*`` columns of one symbol, bar by bar."""

    def __init__(self) -> None:
        self._half = [h * MINUTE_NS for h in IMPACT_HALF_LIVES_MIN]
        self.sums = [0.0] * len(self._half)
        self.last_close_ns: int | None = None
        self.pending: list[tuple[int, int, float]] = []  # (published_ns, arrival, impact)
        self._arrivals = 0

    def receive(self, published_ns: int, impact: float) -> None:
        heapq.heappush(self.pending, (published_ns, self._arrivals, float(impact)))
        self._arrivals += 1

    def update(self, close_ns: int) -> list[float]:
        if self.last_close_ns is not None:
            dt = close_ns - self.last_close_ns
            self.sums = [v * 2.0 ** (-dt / h) for v, h in zip(self.sums, self._half, strict=True)]
        self.last_close_ns = close_ns
        inflow = [0.0] * len(self._half)
        while self.pending and self.pending[0][0] <= close_ns:
            pub, _, impact = heapq.heappop(self.pending)
            for k, h in enumerate(self._half):
                inflow[k] += impact * 2.0 ** (-(close_ns - pub) / h)
        self.sums = [v + u for v, u in zip(self.sums, inflow, strict=True)]
        return list(self.sums)

    def to_state(self) -> dict[str, Any]:
        return {
            "sums": list(self.sums),
            "last_close_ns": self.last_close_ns,
            "pending": [[p, v] for p, _, v in sorted(self.pending)],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ImpactState:
        self = cls()
        self.sums = [float(v) for v in state["sums"]]
        self.last_close_ns = state["last_close_ns"]
        for pub, value in state["pending"]:
            self.receive(int(pub), float(value))
        return self
