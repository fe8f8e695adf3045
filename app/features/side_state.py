"""Incremental twin of ``side_inputs``: side features updated bar by bar in O(1).

Decayed sums are multiplied by ``2**(-dt/half_life)`` once per bar and take the new items'
weights; as-of values keep the last item by (published_at, ts). Items are held back until the
bar whose close reaches their ``published_at``, so an early delivery cannot leak into an earlier
row. Same kernels and the same ordering as the batch engine, hence the same numbers.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

from app.features.rolling import BAR_NS, age_in_bars, deviation_last, zscore_last
from app.features.side_inputs import (
    FLOW_VALUE_LIMITS,
    MINUTE_NS,
    ScoredNews,
    SideInputs,
    call_put_ratio,
    trade_size_dev,
)
from app.features.spec import ZSCORE_FLOW_FEATURES, FeatureSpec
from app.types import FlowPoint, MacroPoint, to_ns

_Z_FEATURE_KIND = ZSCORE_FLOW_FEATURES
_UOA_TIE = {"uoa_call_premium": 0, "uoa_put_premium": 1}


def _exp2(x: float) -> float:
    return 2.0**x


class SideState:
    """News, macro and flow state of one symbol; ``update`` returns the side columns."""

    def __init__(self, spec: FeatureSpec, symbol: str) -> None:
        self.spec = spec
        self.symbol = symbol
        self.rejected: Counter[str] = Counter()
        self._news_h = spec.news_half_life_minutes * MINUTE_NS
        self._short_h = spec.flow_half_life_minutes * MINUTE_NS
        self._long_h = spec.flow_long_half_life_minutes * MINUTE_NS
        self._flow_kinds = spec.flow_kinds
        self.last_close_ns: int | None = None
        # min-heap of (published_ns, ts_ns, tie, arrival, modality, item): O(log n) per item,
        # and equal keys keep their arrival order
        self.pending: list[tuple[int, int, int, int, str, Any]] = []
        self._arrivals = 0
        # news
        self.news_count = 0.0
        self.news_weighted = 0.0
        self.topic_sums = [0.0] * len(spec.topics)
        self._news_sum_h = [h * MINUTE_NS for h in spec.news_sum_half_lives_minutes]
        self.news_sums = [0.0] * len(self._news_sum_h)
        self.last_news_ns: int | None = None
        self.past_scores: deque[float] = deque(maxlen=spec.sentiment_velocity_bars)
        # macro: (published_ns, ts_ns, value) of the last known point per role
        self.fear_greed: tuple[int, int, float] | None = None
        self.implied_vol: tuple[int, int, float] | None = None
        # flow
        window = spec.flow_event_window
        self.event_values: dict[str, deque[float]] = {
            k: deque(maxlen=window) for k in (*_Z_FEATURE_KIND.values(), "uoa")
        }
        self.event_z: dict[str, float] = dict.fromkeys(self.event_values, 0.0)
        self.prev_addresses: float | None = None
        self.addresses_chg = 0.0
        # the last dark-pool report (published_ns, share, deviation) and the recent shares
        self.dark_pool: tuple[int, float, float] | None = None
        self.dark_pool_values: deque[float] = deque(maxlen=window)
        # open times of the last two sessions (a report holds through the next session)
        self._session_gap = spec.session_gap_minutes * MINUTE_NS
        self.session_starts: deque[int] = deque(maxlen=2)
        self.prints = [0.0, 0.0, 0.0, 0.0]  # decayed size/count, short then long half-life
        self.uoa = [0.0, 0.0]  # decayed call / put premium
        self.last_block_ns: int | None = None
        self.last_flow_ns: int | None = None
        # decayed sums of per-event z-scores: kind -> one value per flow_sum half-life
        self._flow_sum_h = [h * MINUTE_NS for h in spec.flow_sum_half_lives_minutes]
        self.flow_sums: dict[str, list[float]] = {
            _Z_FEATURE_KIND[name]: [0.0] * len(self._flow_sum_h) for name in spec.flow_sum_features
        }

    # ------------------------------------------------------------------ intake
    def receive(self, side: SideInputs) -> None:
        """Queue the items that concern this symbol; bad values are rejected and counted."""
        for news in side.news:
            if news.symbol in (self.symbol, ""):
                self._queue(to_ns(news.published_at), 0, 0, "news", news)
        names = (self.spec.fear_greed_series, self.spec.implied_vol_series)
        for point in side.macro:
            if point.name and point.name in names:
                if point.name == self.spec.fear_greed_series and not 0.0 <= point.value <= 100.0:
                    self.rejected[f"macro.{point.name}.value_out_of_range"] += 1
                    continue
                if point.name == self.spec.implied_vol_series and point.value < 0.0:
                    self.rejected[f"macro.{point.name}.value_out_of_range"] += 1
                    continue
                self._queue(to_ns(point.published_at), to_ns(point.ts), 0, "macro", point)
        for point in side.flow:
            if point.symbol != self.symbol or point.kind not in self._flow_kinds:
                continue
            low, high = FLOW_VALUE_LIMITS.get(point.kind, (-math.inf, math.inf))
            if not low <= point.value <= high:
                self.rejected[f"flow.{point.kind}.value_out_of_range"] += 1
                continue
            tie = _UOA_TIE.get(point.kind, 0)
            self._queue(to_ns(point.published_at), to_ns(point.ts), tie, "flow", point)

    def _queue(self, pub: int, ts: int, tie: int, modality: str, item: Any) -> None:
        heapq.heappush(self.pending, (pub, ts, tie, self._arrivals, modality, item))
        self._arrivals += 1

    # ------------------------------------------------------------------ per bar
    def update(self, close_ns: int) -> list[float]:
        """Apply items known at ``close_ns`` and return the side columns in spec order."""
        due = []
        while self.pending and self.pending[0][0] <= close_ns:
            due.append(heapq.heappop(self.pending))  # in (published_at, ts, tie, arrival) order
        if self.last_close_ns is not None:
            dt = close_ns - self.last_close_ns
            a = _exp2(-dt / self._news_h)
            self.news_count *= a
            self.news_weighted *= a
            self.topic_sums = [t * a for t in self.topic_sums]
            self.news_sums = [
                v * _exp2(-dt / h) for v, h in zip(self.news_sums, self._news_sum_h, strict=True)
            ]
            for kind, values in self.flow_sums.items():
                self.flow_sums[kind] = [
                    v * _exp2(-dt / h) for v, h in zip(values, self._flow_sum_h, strict=True)
                ]
            if self.spec.flow_features:
                s = _exp2(-dt / self._short_h)
                g = _exp2(-dt / self._long_h)
                p = self.prints
                self.prints = [p[0] * s, p[1] * s, p[2] * g, p[3] * g]
                self.uoa = [self.uoa[0] * s, self.uoa[1] * s]
        if self.last_close_ns is None or close_ns - BAR_NS - self.last_close_ns > self._session_gap:
            self.session_starts.append(close_ns - BAR_NS)
        self.last_close_ns = close_ns
        if due:
            self._apply(due, close_ns)
        return self._row(close_ns)

    def _apply(self, due: list[tuple[int, int, int, int, str, Any]], close_ns: int) -> None:
        count = weighted = 0.0
        topics = [0.0] * len(self.topic_sums)
        news_sums = [0.0] * len(self.news_sums)
        flow_sums = {kind: [0.0] * len(v) for kind, v in self.flow_sums.items()}
        prints = [0.0, 0.0, 0.0, 0.0]
        uoa = [0.0, 0.0]
        for pub, ts, _tie, _arrival, modality, item in due:
            if modality == "news":
                w = _exp2(-(close_ns - pub) / self._news_h)
                count += w
                weighted += item.score * w
                for j, name in enumerate(self.spec.topics):
                    topics[j] += item.topics.get(name, 0.0) * w
                for j, h in enumerate(self._news_sum_h):
                    news_sums[j] += item.score * _exp2(-(close_ns - pub) / h)
                if self.last_news_ns is None or pub > self.last_news_ns:
                    self.last_news_ns = pub
            elif modality == "macro":
                self._apply_macro(pub, ts, item)
            else:
                self._apply_flow(pub, item, close_ns, prints, uoa)
                if item.kind in flow_sums:
                    z = self.event_z[item.kind]
                    for j, h in enumerate(self._flow_sum_h):
                        flow_sums[item.kind][j] += z * _exp2(-(close_ns - pub) / h)
        self.news_count += count
        self.news_weighted += weighted
        self.topic_sums = [t + u for t, u in zip(self.topic_sums, topics, strict=True)]
        self.news_sums = [t + u for t, u in zip(self.news_sums, news_sums, strict=True)]
        for kind, added in flow_sums.items():
            self.flow_sums[kind] = [t + u for t, u in zip(self.flow_sums[kind], added, strict=True)]
        self.prints = [p + u for p, u in zip(self.prints, prints, strict=True)]
        self.uoa = [p + u for p, u in zip(self.uoa, uoa, strict=True)]

    def _apply_macro(self, pub: int, ts: int, point: MacroPoint) -> None:
        entry = (pub, ts, point.value)
        if point.name == self.spec.fear_greed_series:
            if self.fear_greed is None or (pub, ts) >= self.fear_greed[:2]:
                self.fear_greed = entry
        if point.name == self.spec.implied_vol_series:
            if self.implied_vol is None or (pub, ts) >= self.implied_vol[:2]:
                self.implied_vol = entry

    def _apply_flow(
        self, pub: int, point: FlowPoint, close_ns: int, prints: list[float], uoa: list[float]
    ) -> None:
        kind, value = point.kind, point.value
        if self.last_flow_ns is None or pub > self.last_flow_ns:
            self.last_flow_ns = pub
        if kind in self.event_values:
            ring = self.event_values[kind]
            ring.append(value)
            self.event_z[kind] = zscore_last(ring)
        if kind == "active_addresses":
            if self.prev_addresses is not None:
                self.addresses_chg = math.log(value / self.prev_addresses)
            self.prev_addresses = value
        elif kind == "dark_pool_ratio":
            self.dark_pool_values.append(value)
            self.dark_pool = (pub, value, deviation_last(self.dark_pool_values))
        elif kind == "trade_print":
            s = _exp2(-(close_ns - pub) / self._short_h)
            g = _exp2(-(close_ns - pub) / self._long_h)
            prints[0] += value * s
            prints[1] += s
            prints[2] += value * g
            prints[3] += g
        elif kind == "block_trade":
            if self.last_block_ns is None or pub > self.last_block_ns:
                self.last_block_ns = pub
        elif kind in _UOA_TIE:
            w = _exp2(-(close_ns - pub) / self._short_h)
            uoa[_UOA_TIE[kind]] += value * w
            ring = self.event_values["uoa"]
            ring.append(value)
            self.event_z["uoa"] = zscore_last(ring)

    def _row(self, close_ns: int) -> list[float]:
        spec = self.spec
        denominator = self.news_count + spec.news_prior_weight
        sentiment = self.news_weighted / denominator if denominator > 0 else 0.0
        before = (
            self.past_scores[0] if len(self.past_scores) == spec.sentiment_velocity_bars else 0.0
        )
        self.past_scores.append(sentiment)
        row = [sentiment, sentiment - before, self.news_count, *self.news_sums, *self.topic_sums]
        row.append(age_in_bars(close_ns, self.last_news_ns, spec.news_age_cap_bars))
        cap = spec.macro_age_cap_bars
        fg, iv = self.fear_greed, self.implied_vol
        row.append((fg[2] - 50.0) / 50.0 if fg else 0.0)
        row.append(age_in_bars(close_ns, fg[0] if fg else None, cap))
        row.append(iv[2] / 100.0 if iv else 0.0)
        row.append(age_in_bars(close_ns, iv[0] if iv else None, cap))
        if not spec.flow_features:
            return row
        for name in spec.flow_features:
            row.append(self._flow_value(name, close_ns))
        for name in spec.flow_sum_features:
            row.extend(self.flow_sums[_Z_FEATURE_KIND[name]])
        row.append(age_in_bars(close_ns, self.last_flow_ns, spec.flow_age_cap_bars))
        return row

    def _flow_value(self, name: str, close_ns: int) -> float:
        if name in _Z_FEATURE_KIND:
            return self.event_z[_Z_FEATURE_KIND[name]]
        if name == "active_addresses_chg":
            return self.addresses_chg
        if name in ("dark_pool_ratio", "dark_pool_ratio_dev"):
            report = self.dark_pool
            if report is None or sum(1 for s in self.session_starts if s > report[0]) > 1:
                return 0.0  # none yet, or two sessions began since it was published: stale
            return report[1] if name == "dark_pool_ratio" else report[2]
        if name == "trade_size_dev":
            return trade_size_dev(*self.prints)
        if name == "block_trade_flag":
            seen = self.last_block_ns is not None and close_ns - self.last_block_ns < BAR_NS
            return 1.0 if seen else 0.0
        if name == "uoa_call_put_ratio":
            return call_put_ratio(*self.uoa)
        return self.event_z["uoa"]  # uoa_premium_z

    # ------------------------------------------------------------------ checkpoint
    def to_state(self) -> dict[str, Any]:
        return {
            "rejected": dict(self.rejected),
            "last_close_ns": self.last_close_ns,
            "pending": [_item_state(p[4], p[5]) for p in sorted(self.pending, key=lambda p: p[:4])],
            "news_count": self.news_count,
            "news_weighted": self.news_weighted,
            "topic_sums": list(self.topic_sums),
            "news_sums": list(self.news_sums),
            "flow_sums": {k: list(v) for k, v in self.flow_sums.items()},
            "last_news_ns": self.last_news_ns,
            "past_scores": list(self.past_scores),
            "fear_greed": list(self.fear_greed) if self.fear_greed else None,
            "implied_vol": list(self.implied_vol) if self.implied_vol else None,
            "event_values": {k: list(v) for k, v in self.event_values.items()},
            "event_z": dict(self.event_z),
            "dark_pool_values": list(self.dark_pool_values),
            "prev_addresses": self.prev_addresses,
            "addresses_chg": self.addresses_chg,
            "dark_pool": list(self.dark_pool) if self.dark_pool else None,
            "session_starts": list(self.session_starts),
            "prints": list(self.prints),
            "uoa": list(self.uoa),
            "last_block_ns": self.last_block_ns,
            "last_flow_ns": self.last_flow_ns,
        }

    @classmethod
    def from_state(cls, spec: FeatureSpec, symbol: str, state: dict[str, Any]) -> SideState:
        self = cls(spec, symbol)
        self.rejected = Counter(state["rejected"])
        self.last_close_ns = state["last_close_ns"]
        self.receive(SideInputs(*_items_from_state(state["pending"])))
        for key in ("news_count", "news_weighted", "last_news_ns", "prev_addresses",
                    "addresses_chg", "last_block_ns", "last_flow_ns"):  # fmt: skip
            setattr(self, key, state[key])
        self.topic_sums = list(state["topic_sums"])
        self.news_sums = list(state["news_sums"])
        self.flow_sums = {k: list(v) for k, v in state["flow_sums"].items()}
        self.past_scores.extend(state["past_scores"])
        self.fear_greed = tuple(state["fear_greed"]) if state["fear_greed"] else None  # type: ignore[assignment]
        self.implied_vol = tuple(state["implied_vol"]) if state["implied_vol"] else None  # type: ignore[assignment]
        for key, values in state["event_values"].items():
            self.event_values[key].extend(values)
        self.event_z.update(state["event_z"])
        self.dark_pool_values.extend(state["dark_pool_values"])
        report = state["dark_pool"]
        # a checkpoint from before the session rule held a bare deviation: no report in force
        self.dark_pool = tuple(report) if isinstance(report, list) else None  # type: ignore[assignment]
        self.session_starts.extend(state.get("session_starts", ()))
        self.prints = list(state["prints"])
        self.uoa = list(state["uoa"])
        return self


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _item_state(modality: str, item: Any) -> dict[str, Any]:
    if modality == "news":
        return {
            "m": "news",
            "published_at": item.published_at.isoformat(),
            "symbol": item.symbol,
            "news_id": item.news_id,
            "score": item.score,
            "topics": dict(item.topics),
        }
    if modality == "macro":
        return {"m": "macro", "name": item.name, "ts": item.ts.isoformat(),
                "published_at": item.published_at.isoformat(), "value": item.value}  # fmt: skip
    return {"m": "flow", "symbol": item.symbol, "kind": item.kind, "ts": item.ts.isoformat(),
            "published_at": item.published_at.isoformat(), "value": item.value}  # fmt: skip


def _items_from_state(
    items: list[dict[str, Any]],
) -> tuple[tuple[ScoredNews, ...], tuple[MacroPoint, ...], tuple[FlowPoint, ...]]:
    news, macro, flow = [], [], []
    for it in items:
        if it["m"] == "news":
            news.append(ScoredNews(_dt(it["published_at"]), it["symbol"], it["news_id"],
                                   it["score"], it["topics"]))  # fmt: skip
        elif it["m"] == "macro":
            macro.append(
                MacroPoint(it["name"], _dt(it["ts"]), _dt(it["published_at"]), it["value"])
            )
        else:
            flow.append(FlowPoint(it["symbol"], it["kind"], _dt(it["ts"]),
                                  _dt(it["published_at"]), it["value"]))  # fmt: skip
    return tuple(news), tuple(macro), tuple(flow)
