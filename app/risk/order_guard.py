"""Order-flow guards with memory: a rolling-minute rate limit and duplicate-id refusal.

Both run on the input clock (order timestamps), never the wall clock, and both stay bounded:
the rate window holds at most one minute of orders, the id memory the last ``ID_MEMORY`` ids.
Client order ids are deterministic (symbol, decision time, kind), so a decision replayed for
the same bar reproduces the same id and is refused as a duplicate instead of trading twice.
"""

from __future__ import annotations

from collections import deque

WINDOW_NS = 60 * 1_000_000_000
ID_MEMORY = 4096


class OrderGuard:
    """Remembers recently issued orders: their times (rate limit) and ids (duplicates)."""

    __slots__ = ("_times", "_id_order", "_ids", "max_per_minute")

    def __init__(self, max_per_minute: int) -> None:
        self.max_per_minute = max_per_minute
        self._times: deque[int] = deque()
        # a set for lookups plus a deque for age: evicting the oldest stays O(1) (a dict used as
        # an ordered set slows down, iteration skips the holes its deleted head leaves)
        self._ids: set[str] = set()
        self._id_order: deque[str] = deque()

    def recent_count(self, now_ns: int) -> int:
        """Orders issued in the rolling minute ``(now - 60 s, now]``."""
        times = self._times
        cutoff = now_ns - WINDOW_NS
        while times and times[0] <= cutoff:
            times.popleft()
        return len(times)

    def seen(self, client_order_id: str) -> bool:
        return client_order_id in self._ids

    def record(self, client_order_id: str, now_ns: int) -> None:
        self._times.append(now_ns)
        if client_order_id in self._ids:
            return
        self._ids.add(client_order_id)
        self._id_order.append(client_order_id)
        if len(self._id_order) > ID_MEMORY:
            self._ids.discard(self._id_order.popleft())

    def to_state(self) -> dict[str, list]:
        return {"order_times_ns": list(self._times), "recent_order_ids": list(self._id_order)}

    @classmethod
    def from_state(cls, max_per_minute: int, state: dict) -> OrderGuard:
        guard = cls(max_per_minute)
        times = state["order_times_ns"]
        ids = state["recent_order_ids"]
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in times):
            raise ValueError(f"risk state order_times_ns={times!r}: expected integers (ns)")
        if not all(isinstance(i, str) and i for i in ids):
            raise ValueError(f"risk state recent_order_ids={ids!r}: expected non-empty strings")
        guard._times.extend(times)
        for i in ids[-ID_MEMORY:]:
            if i not in guard._ids:
                guard._ids.add(i)
                guard._id_order.append(i)
        return guard
