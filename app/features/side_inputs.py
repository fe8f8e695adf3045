"""Side inputs (scored news, macro series, flow events) aligned onto the 5-minute bar grid.

The rule (DESIGN.md, Time): an item counts for bar ``t`` only if ``published_at <= t + 5min``
(the bar's close). Every side column has a neutral value and an ``<modality>_age`` column, so an
asset lacking a modality never hands the model a NaN. This module holds the batch alignment and
the item types the incremental engine receives; ``side_state.py`` is the incremental twin and
``side_items.py`` turns side frames into those items, bar by bar.

Bad rows (missing time, non-finite or out-of-range value) are dropped and counted by reason;
the counts travel on the result frame as ``frame.attrs["rejected_side_rows"]``. The replay
helpers (frames to items) count the rows they refuse the same way, in a caller's Counter.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from app.errors import InputError
from app.features.rolling import BAR_NS, event_deviations, event_zscores
from app.features.spec import ZSCORE_FLOW_FEATURES, FeatureSpec
from app.kernels import decayed_cumulative
from app.types import FlowPoint, InvalidField, MacroPoint, require_utc

MINUTE_NS = 60 * 1_000_000_000

# --------------------------------------------------------------------------- item types


@dataclass(frozen=True, slots=True)
class ScoredNews:
    """One row of the scored-news frame (app.text.tagging): item x tagged symbol."""

    published_at: datetime
    symbol: str
    news_id: str
    score: float
    topics: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_utc("ScoredNews", "published_at", self.published_at)
        if not (isinstance(self.score, int | float) and -1.0 <= self.score <= 1.0):
            raise InvalidField("ScoredNews", "score", self.score, "out_of_range", "not in [-1, 1]")
        for name, value in self.topics.items():
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise InvalidField(
                    "ScoredNews", f"topic_{name}", value, "out_of_range", "not in [0, 1]"
                )


@dataclass(frozen=True, slots=True)
class SideInputs:
    """Items that became known since the previous bar (the incremental engine's side input).

    Items published after the bar's close may be passed early: the engine holds them until
    their publication time, so they never change an earlier row.
    """

    news: tuple[ScoredNews, ...] = ()
    macro: tuple[MacroPoint, ...] = ()
    flow: tuple[FlowPoint, ...] = ()


# --------------------------------------------------------------------------- frame parsing


def _ns(frame: pd.DataFrame, column: str, table: str) -> np.ndarray:
    if column not in frame.columns:
        raise InputError(f"{table} frame: missing column {column!r} (have {list(frame.columns)})")
    values = frame[column]
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise InputError(f"{table}.{column}: dtype {values.dtype} is not tz-aware UTC datetime")
    return values.astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").astype(np.int64)


_NAT = np.iinfo(np.int64).min


def _keep(mask: np.ndarray, reason: str, rejected: Counter[str]) -> np.ndarray:
    bad = int((~mask).sum())
    if bad:
        rejected[reason] += bad
    return mask


@dataclass(frozen=True, slots=True)
class _Events:
    """Side rows of one kind, valid and sorted by (published_at, ts)."""

    published_ns: np.ndarray
    ts_ns: np.ndarray
    value: np.ndarray

    @classmethod
    def empty(cls) -> _Events:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, np.zeros(0))


def _sorted_events(pub: np.ndarray, ts: np.ndarray, value: np.ndarray, tie: np.ndarray) -> _Events:
    order = np.lexsort((tie, ts, pub))
    return _Events(pub[order], ts[order], value[order])


def news_events(
    news: pd.DataFrame | None, symbol: str | None, topics: tuple[str, ...], rejected: Counter[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(published_ns, score, topic matrix (n, len(topics))) of the valid rows for ``symbol``.

    A missing ``topic_<name>`` column reads as 0 (no intensity) for every row.
    """
    if news is None or len(news) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros((0, len(topics)))
    if symbol is not None and "symbol" in news.columns:
        news = news[news["symbol"] == symbol]
    pub = _ns(news, "published_at", "news")
    if "score" not in news.columns:
        raise InputError(f"news frame: missing column 'score' (have {list(news.columns)})")
    score = pd.to_numeric(news["score"], errors="coerce").to_numpy(np.float64)
    topic_matrix = np.zeros((len(news), len(topics)))
    for j, name in enumerate(topics):
        column = f"topic_{name}"
        if column in news.columns:
            topic_matrix[:, j] = pd.to_numeric(news[column], errors="coerce").to_numpy(np.float64)
    keep = _keep(pub != _NAT, "news.published_at_missing", rejected)
    keep &= _keep(~keep | np.isfinite(score), "news.score_not_finite", rejected)
    keep &= _keep(~keep | (np.abs(score) <= 1.0), "news.score_out_of_range", rejected)
    topic_ok = np.all(np.isfinite(topic_matrix) & (topic_matrix >= 0) & (topic_matrix <= 1), axis=1)
    keep &= _keep(~keep | topic_ok, "news.topic_out_of_range", rejected)
    order = np.argsort(pub[keep], kind="stable")
    return pub[keep][order], score[keep][order], topic_matrix[keep][order]


def _series_rows(
    frame: pd.DataFrame | None, table: str, key_column: str, key: str
) -> pd.DataFrame | None:
    if frame is None or len(frame) == 0 or not key:
        return None
    if key_column not in frame.columns:
        raise InputError(
            f"{table} frame: missing column {key_column!r} (have {list(frame.columns)})"
        )
    rows = frame[frame[key_column] == key]
    return rows if len(rows) else None


def _events_from_rows(
    rows: pd.DataFrame | None, table: str, name: str, rejected: Counter[str],
    low: float = -math.inf, high: float = math.inf, tie: np.ndarray | None = None,
) -> _Events:  # fmt: skip
    if rows is None:
        return _Events.empty()
    pub = _ns(rows, "published_at", table)
    ts = _ns(rows, "ts", table) if "ts" in rows.columns else pub
    value = pd.to_numeric(rows["value"], errors="coerce").to_numpy(np.float64)
    keep = _keep(pub != _NAT, f"{table}.{name}.published_at_missing", rejected)
    keep &= _keep(~keep | np.isfinite(value), f"{table}.{name}.value_not_finite", rejected)
    keep &= _keep(~keep | ((value >= low) & (value <= high)), f"{table}.{name}.value_out_of_range",
                  rejected)  # fmt: skip
    tie = np.zeros(len(rows), dtype=np.int64) if tie is None else tie
    return _sorted_events(pub[keep], ts[keep], value[keep], tie[keep])


# --------------------------------------------------------------------------- alignment kernels


def _asof_index(published_ns: np.ndarray, close_ns: np.ndarray) -> np.ndarray:
    """Index of the last event published at or before each close (-1 if none)."""
    return np.searchsorted(published_ns, close_ns, side="right") - 1


def _asof(values: np.ndarray, published_ns: np.ndarray, close_ns: np.ndarray, neutral: float):
    idx = _asof_index(published_ns, close_ns)
    out = np.full(len(close_ns), neutral)
    has = idx >= 0
    out[has] = values[idx[has]]
    return out


def session_starts(close_ns: np.ndarray, gap_ns: float) -> np.ndarray:
    """True where a bar opens a session: the first bar, or one whose open follows the previous
    close by more than ``gap_ns`` (a night, a weekend, a halt)."""
    starts = np.ones(len(close_ns), dtype=bool)
    starts[1:] = (close_ns[1:] - BAR_NS - close_ns[:-1]) > gap_ns
    return starts


def _session_held(
    values: np.ndarray, published_ns: np.ndarray, close_ns: np.ndarray, gap_ns: float
) -> np.ndarray:
    """The last published value while it is in force, else 0: from its publication through
    the end of the next session, i.e. while at most one session has started since (a daily
    report published after the close speaks for the next session, not for the one after)."""
    out = np.zeros(len(close_ns))
    idx = _asof_index(published_ns, close_ns)
    has = np.flatnonzero(idx >= 0)
    if len(has) == 0:
        return out
    starts = session_starts(close_ns, gap_ns)
    session = np.cumsum(starts)  # sessions started at or before each bar's open
    start_open = close_ns[starts] - BAR_NS
    before = np.searchsorted(start_open, published_ns[idx[has]], side="right")
    rows = has[session[has] - before <= 1]
    out[rows] = values[idx[rows]]
    return out


def _age(published_ns: np.ndarray, close_ns: np.ndarray, cap: float) -> np.ndarray:
    idx = _asof_index(published_ns, close_ns)
    out = np.full(len(close_ns), cap)
    has = idx >= 0
    out[has] = np.minimum(cap, (close_ns[has] - published_ns[idx[has]]) / BAR_NS)
    return out


def _decayed(
    published_ns: np.ndarray, weights: np.ndarray, close_ns: np.ndarray, half_life_ns: float
) -> np.ndarray:
    """Sum over known events of ``weight * 2**(-(close - published)/half_life)`` per bar."""
    if len(published_ns) == 0:
        return np.zeros(len(close_ns))
    bar = np.searchsorted(close_ns, published_ns, side="left")  # first bar whose close >= pub
    inside = bar < len(close_ns)
    bar, published_ns, weights = bar[inside], published_ns[inside], weights[inside]
    decay = np.exp2(-(close_ns[bar] - published_ns) / half_life_ns)
    inflow = np.bincount(bar, weights=weights * decay, minlength=len(close_ns))
    return decayed_cumulative(close_ns, inflow, half_life_ns)


# --------------------------------------------------------------------------- modalities


def news_features(
    close_ns: np.ndarray,
    news: pd.DataFrame | None,
    symbol: str | None,
    spec: FeatureSpec,
    rejected: Counter[str],
) -> dict[str, np.ndarray]:
    pub, score, topic_matrix = news_events(news, symbol, spec.topics, rejected)
    h = spec.news_half_life_minutes * MINUTE_NS
    count = _decayed(pub, np.ones(len(pub)), close_ns, h)
    weighted = _decayed(pub, score, close_ns, h)
    denominator = count + spec.news_prior_weight
    with np.errstate(invalid="ignore", divide="ignore"):
        sentiment = np.where(denominator > 0, weighted / denominator, 0.0)
    lag = spec.sentiment_velocity_bars
    before = np.concatenate([np.zeros(lag), sentiment])[: len(sentiment)]
    out = {
        "sentiment_score": sentiment,
        "sentiment_velocity": sentiment - before,
        "news_intensity": count,
    }
    for h_min, name in zip(spec.news_sum_half_lives_minutes, spec.news_sum_names, strict=True):
        out[name] = _decayed(pub, score, close_ns, h_min * MINUTE_NS)
    for j, name in enumerate(spec.topics):
        out[f"topic_{name}"] = _decayed(pub, topic_matrix[:, j], close_ns, h)
    out["news_age"] = _age(pub, close_ns, spec.news_age_cap_bars)
    return out


def macro_features(
    close_ns: np.ndarray, macro: pd.DataFrame | None, spec: FeatureSpec, rejected: Counter[str]
) -> dict[str, np.ndarray]:
    fg = _events_from_rows(
        _series_rows(macro, "macro", "symbol", spec.fear_greed_series), "macro",
        spec.fear_greed_series, rejected, low=0.0, high=100.0,
    )  # fmt: skip
    iv = _events_from_rows(
        _series_rows(macro, "macro", "symbol", spec.implied_vol_series), "macro",
        spec.implied_vol_series, rejected, low=0.0,
    )  # fmt: skip
    cap = spec.macro_age_cap_bars
    return {
        "fear_greed": _asof((fg.value - 50.0) / 50.0, fg.published_ns, close_ns, 0.0),
        "fear_greed_age": _age(fg.published_ns, close_ns, cap),
        "implied_vol": _asof(points_to_vol(iv.value), iv.published_ns, close_ns, 0.0),
        "implied_vol_age": _age(iv.published_ns, close_ns, cap),
    }


def points_to_vol(value: np.ndarray) -> np.ndarray:
    """VIX / DVOL points (annualized %) -> a fraction (20 -> 0.20)."""
    return value / 100.0


FLOW_VALUE_LIMITS: dict[str, tuple[float, float]] = {
    "dark_pool_ratio": (0.0, 1.0),
    "active_addresses": (1e-12, math.inf),
    "trade_print": (1e-12, math.inf),
    "whale_transfers": (0.0, math.inf),
    "inst_volume": (0.0, math.inf),
    "block_trade": (0.0, math.inf),
    "uoa_call_premium": (0.0, math.inf),
    "uoa_put_premium": (0.0, math.inf),
}


def flow_events(
    flow: pd.DataFrame | None, symbol: str | None, spec: FeatureSpec, rejected: Counter[str]
) -> dict[str, _Events]:
    """Valid, sorted events per flow kind the spec reads."""
    if flow is None or len(flow) == 0 or not spec.flow_features:
        return {kind: _Events.empty() for kind in spec.flow_kinds}
    for column in ("kind", "published_at", "value"):
        if column not in flow.columns:
            raise InputError(f"flow frame: missing column {column!r} (have {list(flow.columns)})")
    if symbol is not None and "symbol" in flow.columns:
        flow = flow[flow["symbol"] == symbol]
    out = {}
    for kind in sorted(spec.flow_kinds):
        low, high = FLOW_VALUE_LIMITS.get(kind, (-math.inf, math.inf))
        rows = _series_rows(flow, "flow", "kind", kind)
        out[kind] = _events_from_rows(rows, "flow", kind, rejected, low=low, high=high)
    return out


def _merge(a: _Events, b: _Events) -> _Events:
    """Two kinds as one stream in (published_at, ts, kind) order (a before b on ties)."""
    tie = np.concatenate([np.zeros(len(a.value), np.int64), np.ones(len(b.value), np.int64)])
    return _sorted_events(
        np.concatenate([a.published_ns, b.published_ns]),
        np.concatenate([a.ts_ns, b.ts_ns]),
        np.concatenate([a.value, b.value]),
        tie,
    )


def flow_features(
    close_ns: np.ndarray,
    flow: pd.DataFrame | None,
    symbol: str | None,
    spec: FeatureSpec,
    rejected: Counter[str],
) -> dict[str, np.ndarray]:
    if not spec.flow_features:
        return {}
    events = flow_events(flow, symbol, spec, rejected)
    window = spec.flow_event_window
    short_h = spec.flow_half_life_minutes * MINUTE_NS
    long_h = spec.flow_long_half_life_minutes * MINUTE_NS
    out: dict[str, np.ndarray] = {}
    for name in spec.flow_features:
        if name in ("exchange_net_flow", "whale_transfers", "inst_volume_norm"):
            e = events["inst_volume" if name == "inst_volume_norm" else name]
            out[name] = _asof(event_zscores(e.value, window), e.published_ns, close_ns, 0.0)
        elif name == "active_addresses_chg":
            e = events["active_addresses"]
            change = np.zeros(len(e.value))
            change[1:] = np.log(e.value[1:] / e.value[:-1])
            out[name] = _asof(change, e.published_ns, close_ns, 0.0)
        elif name in ("dark_pool_ratio", "dark_pool_ratio_dev"):  # the report in force, or 0
            e = events["dark_pool_ratio"]
            value = e.value if name == "dark_pool_ratio" else event_deviations(e.value, window)
            gap_ns = spec.session_gap_minutes * MINUTE_NS
            out[name] = _session_held(value, e.published_ns, close_ns, gap_ns)
        elif name == "trade_size_dev":
            e = events["trade_print"]
            ones = np.ones(len(e.value))
            s_short = _decayed(e.published_ns, e.value, close_ns, short_h)
            n_short = _decayed(e.published_ns, ones, close_ns, short_h)
            s_long = _decayed(e.published_ns, e.value, close_ns, long_h)
            n_long = _decayed(e.published_ns, ones, close_ns, long_h)
            out[name] = trade_size_dev(s_short, n_short, s_long, n_long)
        elif name == "block_trade_flag":
            e = events["block_trade"]
            age = _age(e.published_ns, close_ns, math.inf)
            out[name] = (age < 1.0).astype(np.float64)
        elif name == "uoa_call_put_ratio":
            calls = _decayed(events["uoa_call_premium"].published_ns,
                             events["uoa_call_premium"].value, close_ns, short_h)  # fmt: skip
            puts = _decayed(events["uoa_put_premium"].published_ns,
                            events["uoa_put_premium"].value, close_ns, short_h)  # fmt: skip
            out[name] = call_put_ratio(calls, puts)
        elif name == "uoa_premium_z":
            e = _merge(events["uoa_call_premium"], events["uoa_put_premium"])
            out[name] = _asof(event_zscores(e.value, window), e.published_ns, close_ns, 0.0)
    sum_names = iter(spec.flow_sum_names)
    for name in spec.flow_sum_features:
        e = events[ZSCORE_FLOW_FEATURES[name]]
        z = event_zscores(e.value, window)
        for h_min in spec.flow_sum_half_lives_minutes:
            out[next(sum_names)] = _decayed(e.published_ns, z, close_ns, h_min * MINUTE_NS)
    used = [events[k].published_ns for k in sorted(spec.flow_kinds)]
    out["flow_age"] = _age(np.sort(np.concatenate(used)), close_ns, spec.flow_age_cap_bars)
    return out


_TINY = 1e-12  # decayed counts below this are "no recent prints" (after ~40 half-lives)


def trade_size_dev(s_short, n_short, s_long, n_long):  # type: ignore[no-untyped-def]
    """log(recent mean print size / long-run mean print size); 0 without prints.

    Works on floats (incremental engine) and on arrays (batch engine) alike.
    """
    if isinstance(s_short, float):
        if n_short > _TINY and n_long > _TINY and s_short > 0 and s_long > 0:
            return math.log((s_short / n_short) / (s_long / n_long))
        return 0.0
    ok = (n_short > _TINY) & (n_long > _TINY) & (s_short > 0) & (s_long > 0)
    out = np.zeros(len(s_short))
    out[ok] = np.log((s_short[ok] / n_short[ok]) / (s_long[ok] / n_long[ok]))
    return out


def call_put_ratio(calls, puts):  # type: ignore[no-untyped-def]
    """(calls - puts) / (calls + puts) of decayed unusual-option premiums, in [-1, 1]; 0 if none."""
    if isinstance(calls, float):
        total = calls + puts
        return (calls - puts) / total if total > _TINY else 0.0
    total = calls + puts
    out = np.zeros(len(calls))
    ok = total > _TINY
    out[ok] = (calls[ok] - puts[ok]) / total[ok]
    return out


def side_features(
    close_ns: np.ndarray,
    *,
    symbol: str | None,
    spec: FeatureSpec,
    news: pd.DataFrame | None,
    macro: pd.DataFrame | None,
    flow: pd.DataFrame | None,
    rejected: Counter[str],
) -> dict[str, np.ndarray]:
    """Every side column of ``spec`` for bars closing at ``close_ns`` (ascending int64 ns)."""
    out = news_features(close_ns, news, symbol, spec, rejected)
    out.update(macro_features(close_ns, macro, spec, rejected))
    out.update(flow_features(close_ns, flow, symbol, spec, rejected))
    return out
