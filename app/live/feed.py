"""``FeedWorker``: one asset class's bars and side inputs → store → features → windows.

Per new bar: check it (grid, order; rejects counted by the ``app.schema`` reason names), take
the side items that arrived before it (headlines scored in one batch), write it to the store
(idempotent), update its ticker's ``IncrementalFeatures`` (and news-impact sums), keep the
latest ``lookback`` rows as the raw window the ``ModelBundle`` wants, and once every ticker of
the class has closed bar t, return a frozen ``BarClose`` for the signal graph.

Restart (docs/LIVE.md, Restart and checkpoints): a checkpoint every ``checkpoint_every`` bars
and on ``close()``; ``restore()`` loads it, replays the store's bars after it together with the
logged side batches, and ``resume_point()`` tells the sources where to continue: no gap, no
duplicate, and the feature rows equal an uninterrupted run's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from app.errors import InputError
from app.features.incremental import IncrementalFeatures
from app.features.side_inputs import SideInputs
from app.live.checkpoint import CheckpointDir, SideBatch
from app.live.headlines import HeadlineScorer, ScoredHeadline
from app.live.impact_state import ImpactState
from app.live.items import FeedItem, ResumePoint
from app.live.window_spec import WindowSpec
from app.schema.bars import BAR_COLUMNS
from app.types import BAR_NS, AssetClass, Bar, FlowPoint, MacroPoint, NewsItem, from_ns, to_ns

if TYPE_CHECKING:
    from app.live.side_feed import SideFeed


class BarStore(Protocol):
    """The store calls a feed makes (a ``TimeSeriesStore``, or a handle to a store actor)."""

    def write_bars(self, frame: pd.DataFrame, *, upsert: bool = False) -> int: ...

    def read_bars(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame: ...


@dataclass(frozen=True, slots=True)
class BarClose:
    """Bar ``ts`` closed for every ticker of the class: the signal graph's input.

    ``windows``: ticker -> (lookback, n_features) float64, raw (unscaled) rows in
    ``feature_names`` order, last row = bar ``ts``; only tickers with a full window of finite
    rows (past the warm-up) appear. ``bars``: every ticker that has bar ``ts``. ``atr``: the
    spec's ATR column at ``ts`` where finite. ``replayed``: produced by ``restore()`` (the
    consumer may have seen it before the restart; key on (asset_class, ts)).
    """

    asset_class: AssetClass
    ts: datetime
    windows: Mapping[str, np.ndarray]
    bars: Mapping[str, Bar]
    atr: Mapping[str, float]
    feature_names: tuple[str, ...]
    replayed: bool = False

    @property
    def close_time(self) -> datetime:
        return from_ns(to_ns(self.ts) + BAR_NS)


@dataclass(frozen=True)
class FeedStats:
    bars: int  # bars processed (features updated)
    stored: int  # bars newly written to the store
    already_stored: int  # bars the store had (idempotent write returned 0)
    rejected: dict[str, dict[str, int]]  # symbol -> reason -> count
    closes: int
    side_items: int
    headline_batches: int
    restored_bars: int
    checkpoints: int
    last_ts: dict[str, str | None]


@dataclass
class _Ticker:
    features: IncrementalFeatures
    impact: ImpactState | None
    window: list[np.ndarray] = field(default_factory=list)
    last_ts_ns: int | None = None


class FeedWorker:
    """The plain class a feed actor runs; see the module docstring."""

    def __init__(
        self,
        asset_class: AssetClass | str,
        symbols: Sequence[str],
        window: WindowSpec,
        store: BarStore,
        *,
        scorer: HeadlineScorer | None = None,
        checkpoints: CheckpointDir | None = None,
        checkpoint_every: int = 288,
        store_every: int = 1,
        keep_rows: bool = False,
        side: SideFeed | None = None,
    ) -> None:
        self.asset_class = AssetClass(asset_class)
        if window.spec.asset_class is not self.asset_class:
            raise InputError(
                f"asset_class={self.asset_class.value!r}: the window spec is for "
                f"{window.spec.asset_class.value!r}"
            )
        if not symbols or len(set(symbols)) != len(symbols):
            raise InputError(f"symbols={list(symbols)!r}: need distinct symbols")
        if checkpoint_every < 1 or store_every < 1:
            raise InputError(
                f"checkpoint_every={checkpoint_every!r}, store_every={store_every!r}: must be >= 1"
            )
        self.symbols = tuple(symbols)
        self.window = window
        self.store = store
        self.scorer = scorer
        self.checkpoints = checkpoints
        self.checkpoint_every = checkpoint_every
        self.store_every = store_every
        self._unstored: list[Bar] = []
        self.keep_rows = keep_rows
        self.side = side  # side sources polled on their own cadence before each new bar
        self.rows: dict[str, list[tuple[int, np.ndarray]]] = {s: [] for s in self.symbols}
        self._atr_col = window.feature_names.index(f"atr_{window.spec.atr_period}")
        self._tickers = {s: self._new_ticker(s) for s in self.symbols}
        self._pending: dict[int, dict[str, tuple[Bar, np.ndarray | None, float]]] = {}
        self._buffer: list[NewsItem | MacroPoint | FlowPoint] = []
        self.side_seen = 0
        self.side_polled = 0  # of side_seen, items from ``side`` (not the replayed stream)
        self._buffer_polled = 0
        self._counts = dict.fromkeys(
            ("bars", "stored", "already_stored", "closes", "restored_bars", "checkpoints"), 0
        )
        self._rejected: dict[str, dict[str, int]] = {}
        self._since_checkpoint = 0

    def _new_ticker(self, symbol: str) -> _Ticker:
        impact = ImpactState() if self.window.impact_columns else None
        return _Ticker(IncrementalFeatures(self.window.spec, symbol, self.asset_class), impact)

    # ------------------------------------------------------------------ intake
    def on_item(self, item: FeedItem) -> list[BarClose]:
        """A bar (processed now) or a side item (taken before the next bar)."""
        if isinstance(item, Bar):
            return self.on_bar(item)
        if not isinstance(item, NewsItem | MacroPoint | FlowPoint):
            raise InputError(f"item: {type(item).__name__} is not a bar or side item")
        self._buffer.append(item)
        return []

    def on_polled(self, items: Sequence[NewsItem | MacroPoint | FlowPoint]) -> None:
        """Side items a ``SideFeed`` polled: taken like ``on_item``'s, but not counted in the
        resume point's ``side_seen`` (that counts the replayed stream's items)."""
        self._buffer.extend(items)
        self._buffer_polled += len(items)

    def on_bar(self, bar: Bar) -> list[BarClose]:
        reason = self._check(bar)
        if reason is not None:
            per = self._rejected.setdefault(bar.symbol, {})
            per[reason] = per.get(reason, 0) + 1
            return []
        if self.checkpoint_due:  # the caller has delivered the closes of the bars before
            self.checkpoint()
        if self.side is not None:
            self.side.before_bar(bar, self)
        self.flush_side()
        self._unstored.append(bar)
        if len(self._unstored) >= self.store_every:
            self.flush_store()
        closes = self._advance(bar, replayed=False)
        self._since_checkpoint += 1
        return closes

    @property
    def checkpoint_due(self) -> bool:
        """``checkpoint_every`` bars since the last checkpoint: the next bar writes one first.
        Never inside the bar that completes a close: a checkpoint past a close its caller has
        not delivered yet would lose that close in a crash (``restore()`` rebuilds only the
        closes after the checkpoint), so callers that send asynchronously wait for their sends
        while this is true."""
        return self.checkpoints is not None and self._since_checkpoint >= self.checkpoint_every

    def flush_store(self) -> None:
        """Write the bars not yet in the store (one idempotent batch)."""
        if not self._unstored:
            return
        bars, self._unstored = self._unstored, []
        frame = pd.DataFrame(
            [[b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume] for b in bars],
            columns=list(BAR_COLUMNS),
        )
        frame["ts"] = frame["ts"].astype("datetime64[ns, UTC]")
        inserted = int(self.store.write_bars(frame))
        self._counts["stored"] += inserted
        self._counts["already_stored"] += len(bars) - inserted

    def _check(self, bar: Bar) -> str | None:
        if bar.symbol not in self._tickers:
            return "unknown_symbol"
        if bar.ts_ns % BAR_NS:
            return "off_grid"
        last = self._tickers[bar.symbol].last_ts_ns
        if last is not None and bar.ts_ns <= last:
            return "duplicate" if bar.ts_ns == last else "out_of_order"
        return None

    def flush_side(self) -> None:
        """Score the buffered headlines in one batch and hand every buffered item to the
        tickers' states (each holds an item until the bar whose close reaches its
        ``published_at``); logged first, so a restart replays it."""
        if not self._buffer:
            return
        items, self._buffer = self._buffer, []
        news = [i for i in items if isinstance(i, NewsItem)]
        scored: list[ScoredHeadline] = self.scorer.score(news) if self.scorer and news else []
        batch = SideBatch(
            seq=self.side_seen,
            count=len(items),
            after={s: t.last_ts_ns for s, t in self._tickers.items()},
            news=tuple(scored),
            macro=tuple(i for i in items if isinstance(i, MacroPoint)),
            flow=tuple(i for i in items if isinstance(i, FlowPoint)),
            polled=self._buffer_polled,
        )
        self._buffer_polled = 0
        if self.checkpoints is not None:
            self.checkpoints.append(batch)
        self._apply_batch(batch, self.symbols)
        self.side_seen += batch.count
        self.side_polled += batch.polled

    def _apply_batch(self, batch: SideBatch, symbols: Sequence[str]) -> None:
        side = SideInputs(tuple(h.news for h in batch.news), batch.macro, batch.flow)
        for s in symbols:
            t = self._tickers[s]
            t.features.side.receive(side)
            if t.impact is not None:
                for h in batch.news:
                    if h.news.symbol == s:
                        t.impact.receive(to_ns(h.news.published_at), h.impact)

    # ------------------------------------------------------------------ per bar
    def _advance(self, bar: Bar, *, replayed: bool) -> list[BarClose]:
        t = self._tickers[bar.symbol]
        row = t.features.update(bar)
        values = [row[n] for n in self.window.spec.feature_names]
        if t.impact is not None:
            sums = t.impact.update(bar.ts_ns + BAR_NS)
            values += sums if self.window.impact_model is not None else [0.0] * len(sums)
        vec = np.asarray(values, dtype=np.float64)
        if self.keep_rows:
            self.rows[bar.symbol].append((bar.ts_ns, vec))
        t.window.append(vec)
        if len(t.window) > self.window.lookback:
            del t.window[0]
        t.last_ts_ns = bar.ts_ns
        self._counts["bars"] += 1
        full = None
        if len(t.window) == self.window.lookback:
            stacked = np.stack(t.window)
            if np.all(np.isfinite(stacked)):
                stacked.flags.writeable = False
                full = stacked
        atr = float(vec[self._atr_col])
        self._pending.setdefault(bar.ts_ns, {})[bar.symbol] = (bar, full, atr)
        return self._complete(replayed)

    def _complete(self, replayed: bool) -> list[BarClose]:
        lasts = [t.last_ts_ns for t in self._tickers.values()]
        if any(v is None for v in lasts):
            return []
        done_to = min(v for v in lasts if v is not None)
        out = []
        for ts_ns in sorted(k for k in self._pending if k <= done_to):
            out.append(self._bar_close(ts_ns, self._pending.pop(ts_ns), replayed))
        self._counts["closes"] += len(out)
        return out

    def _bar_close(
        self, ts_ns: int, entries: dict[str, tuple[Bar, np.ndarray | None, float]], replayed: bool
    ) -> BarClose:
        order = [s for s in self.symbols if s in entries]
        return BarClose(
            asset_class=self.asset_class,
            ts=from_ns(ts_ns),
            windows={s: entries[s][1] for s in order if entries[s][1] is not None},
            bars={s: entries[s][0] for s in order},
            atr={s: entries[s][2] for s in order if math.isfinite(entries[s][2])},
            feature_names=self.window.feature_names,
            replayed=replayed,
        )

    # ------------------------------------------------------------------ restart
    def resume_point(self) -> ResumePoint:
        return ResumePoint(
            bars_after={s: t.last_ts_ns for s, t in self._tickers.items()},
            side_seen=self.side_seen + len(self._buffer) - self.side_polled - self._buffer_polled,
        )

    def checkpoint(self) -> None:
        """Write the checkpoint now (buffered side items are taken first)."""
        self.flush_store()  # the store is never behind a checkpoint
        if self.checkpoints is None:
            return
        self.flush_side()
        self.checkpoints.save(self._state())
        self._counts["checkpoints"] += 1
        self._since_checkpoint = 0

    def close(self) -> None:
        """Shutdown: take the buffered side items, write pending bars, checkpoint."""
        self.flush_side()
        self.checkpoint()

    def restore(self) -> list[BarClose]:
        """Load the checkpoint (if any), replay the store's later bars with the logged side
        batches in their original order; return the bar closes that replay completed."""
        state = self.checkpoints.load() if self.checkpoints is not None else None
        if state is not None:
            self._load_state(state)
        batches = self.checkpoints.batches(self.side_seen) if self.checkpoints else []
        bars: list[tuple[int, int, Bar]] = []
        for k, s in enumerate(self.symbols):
            last = self._tickers[s].last_ts_ns
            start = None if last is None else from_ns(last + BAR_NS)
            frame = self.store.read_bars(s, start=start)
            bars += [(b.ts_ns, k, b) for b in _frame_bars(frame, s)]
        bars.sort(key=lambda e: (e[0], e[1]))
        applied = dict.fromkeys(self.symbols, 0)  # per ticker: batches taken so far
        out: list[BarClose] = []
        for ts_ns, _, bar in bars:
            s = bar.symbol
            while applied[s] < len(batches) and _before(batches[applied[s]], s, ts_ns):
                self._apply_batch(batches[applied[s]], (s,))
                applied[s] += 1
            out += self._advance(bar, replayed=True)
            self._counts["restored_bars"] += 1
        for s in self.symbols:
            for batch in batches[applied[s] :]:
                self._apply_batch(batch, (s,))
        self.side_polled += sum(b.polled for b in batches)
        if batches:
            self.side_seen = batches[-1].seq + batches[-1].count
        return out

    def _state(self) -> dict[str, Any]:
        return {
            "asset_class": self.asset_class.value,
            "symbols": list(self.symbols),
            "side_seen": self.side_seen,
            "side_polled": self.side_polled,
            "counts": dict(self._counts),
            "rejected": self._rejected,
            "tickers": {
                s: {
                    "features": t.features.to_state(),
                    "impact": t.impact.to_state() if t.impact is not None else None,
                    "window": [v.tolist() for v in t.window],
                    "last_ts_ns": t.last_ts_ns,
                }
                for s, t in self._tickers.items()
            },
            "pending": [
                [ts_ns, s, _bar_json(bar), None if w is None else w.tolist(), atr]
                for ts_ns, entries in sorted(self._pending.items())
                for s, (bar, w, atr) in entries.items()
            ],
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        if state["asset_class"] != self.asset_class.value or state["symbols"] != list(self.symbols):
            raise InputError(
                f"checkpoint: for {state['asset_class']} {state['symbols']}, not "
                f"{self.asset_class.value} {list(self.symbols)}"
            )
        self.side_seen = int(state["side_seen"])
        self.side_polled = int(state.get("side_polled", 0))
        self._counts.update(state["counts"])
        self._rejected = {s: dict(r) for s, r in state["rejected"].items()}
        for s, ts in state["tickers"].items():
            t = self._tickers[s]
            t.features = IncrementalFeatures.from_state(ts["features"])
            t.impact = ImpactState.from_state(ts["impact"]) if ts["impact"] else t.impact
            t.window = [np.asarray(v, dtype=np.float64) for v in ts["window"]]
            t.last_ts_ns = ts["last_ts_ns"]
        self._pending = {}
        for ts_ns, s, bar, w, atr in state["pending"]:
            window = None
            if w is not None:
                window = np.asarray(w, dtype=np.float64)
                window.flags.writeable = False
            self._pending.setdefault(int(ts_ns), {})[s] = (_bar_back(bar), window, float(atr))

    # ------------------------------------------------------------------ inspection
    def stats(self) -> FeedStats:
        return FeedStats(
            **self._counts,
            rejected={s: dict(r) for s, r in self._rejected.items()},
            side_items=self.side_seen,
            headline_batches=self.scorer.batches if self.scorer else 0,
            last_ts={
                s: None if t.last_ts_ns is None else from_ns(t.last_ts_ns).isoformat()
                for s, t in self._tickers.items()
            },
        )

    def feature_state(self, symbol: str) -> dict[str, Any]:
        """The ticker's ``IncrementalFeatures.to_state()`` (tests compare runs with it)."""
        return self._tickers[symbol].features.to_state()

    def latest_window(self, symbol: str) -> np.ndarray | None:
        t = self._tickers[symbol]
        return np.stack(t.window) if t.window else None


def _before(batch: SideBatch, symbol: str, ts_ns: int) -> bool:
    """Was ``batch`` taken before ``symbol``'s bar ``ts_ns`` in the original run?"""
    after = batch.after.get(symbol)
    return after is None or after < ts_ns


def _frame_bars(frame: pd.DataFrame, symbol: str) -> list[Bar]:
    if frame.empty:
        return []
    ts = frame["ts"].astype("datetime64[ns, UTC]")
    cols = [frame[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")]
    return [Bar(symbol, t.to_pydatetime(), *(float(c[i]) for c in cols)) for i, t in enumerate(ts)]


def _bar_json(bar: Bar) -> list[Any]:
    return [bar.symbol, bar.ts_ns, bar.open, bar.high, bar.low, bar.close, bar.volume]


def _bar_back(v: list[Any]) -> Bar:
    return Bar(v[0], from_ns(int(v[1])), *(float(x) for x in v[2:]))
