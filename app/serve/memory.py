"""``MemoryLiveView``: the in-memory :class:`~app.serve.view.LiveView` the live worker fills.

The worker calls the ``publish_*`` / ``record_*`` / ``mark`` / ``feed_bar`` methods as bars,
decisions, orders and fills happen; the API reads the result. Risk commands act on the real
:class:`~app.risk.engine.RiskEngine` the worker decides with, and model commands on the real
registry folder. Histories are bounded (``max_history`` rows each, oldest dropped).
Thread-safe: the worker may run in another thread than the API's event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from app.backtest.metrics import compute_metrics
from app.clock import Clock
from app.config import ApiSettings, Settings
from app.models import registry
from app.models.registry import VersionInfo
from app.risk.engine import RiskEngine
from app.serve.events import EventHub, EventKind
from app.serve.state import SignalBook, SignalView
from app.serve.view import (
    ClosedTrade,
    EquityPoint,
    FeedView,
    OrderView,
    OtherAssetClass,
    PerformanceView,
    PortfolioView,
    Promotion,
    RiskView,
    UnknownVersion,
    portfolio_view,
)
from app.types import (
    BAR_INTERVAL,
    AssetClass,
    Fill,
    Order,
    OrderStatus,
    Position,
    RiskDecision,
    RiskState,
    Signal,
    require_utc,
)


class _Feed:
    __slots__ = ("source", "asset_class", "symbols", "last_bar_ts")

    def __init__(self, source: str, asset_class: AssetClass) -> None:
        self.source = source
        self.asset_class = asset_class
        self.symbols: set[str] = set()
        self.last_bar_ts: datetime | None = None


class MemoryLiveView:
    """The live loop's state in memory, served by the API."""

    def __init__(
        self,
        *,
        clock: Clock,
        engine: RiskEngine,
        registry_dir: str | Path,
        tickers: Sequence[str],
        api: ApiSettings,
        initial_equity: float,
        calendar: AssetClass,
        max_history: int = 100_000,
        on_risk_change: Callable[[RiskEngine], None] | None = None,
    ) -> None:
        if not (math.isfinite(initial_equity) and initial_equity > 0):
            raise ValueError(f"initial_equity={initial_equity!r}: must be finite > 0")
        if max_history < 1:
            raise ValueError(f"max_history={max_history!r}: must be >= 1")
        self._clock = clock
        self._signals = SignalBook(clock, api.signal_stale_bars)
        self._events = EventHub(api.sse_queue_size, api.sse_max_subscribers)
        self.engine = engine
        self.registry_dir = Path(registry_dir)
        self._tickers = tuple(tickers)
        self._feed_limits = dict(api.feed_stale_s)
        self.initial_equity = float(initial_equity)
        self.calendar = AssetClass(calendar)
        self.max_history = max_history
        self._on_risk_change = on_risk_change
        self._lock = threading.RLock()  # guards the engine and every record below
        self._orders: OrderedDict[str, OrderView] = OrderedDict()  # creation order
        self._fills: list[Fill] = []  # sorted by ts
        self._equity: list[EquityPoint] = []  # sorted by ts, one per mark instant
        self._trades: list[ClosedTrade] = []
        self._feeds: dict[str, _Feed] = {}
        self._portfolio = PortfolioView(
            None, self.initial_equity, self.initial_equity, 0.0, 0.0, 0.0, 0.0
        )
        self._last_state: RiskState = engine.state
        self._perf_key: tuple[int, int, float] | None = None
        self._perf: PerformanceView | None = None
        self._models: tuple[VersionInfo, ...] = tuple(registry.list_versions(self.registry_dir))

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Clock, engine: RiskEngine, **kw: object
    ) -> MemoryLiveView:
        """A view over the configured universe and registry; ``kw`` as in ``__init__``."""
        classes = {a.asset_class for a in settings.universe}
        kw.setdefault("calendar", next(iter(classes)) if len(classes) == 1 else AssetClass.CRYPTO)
        kw.setdefault("initial_equity", 100_000.0)
        return cls(
            clock=clock,
            engine=engine,
            registry_dir=settings.registry_dir,
            tickers=[a.symbol for a in settings.universe],
            api=settings.api,
            **kw,  # type: ignore[arg-type]
        )

    # ------------------------------------------------------------------ LiveView: reads

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def signals(self) -> SignalBook:
        return self._signals

    @property
    def events(self) -> EventHub:
        return self._events

    def tickers(self) -> tuple[str, ...]:
        return self._tickers

    def portfolio(self) -> PortfolioView:
        return self._portfolio

    def orders(self, status: OrderStatus | None, limit: int) -> list[OrderView]:
        out: list[OrderView] = []
        with self._lock:
            for view in reversed(self._orders.values()):
                if status is None or view.status is status:
                    out.append(view)
                    if len(out) >= limit:
                        break
        return out

    def fills(self, since: datetime | None, limit: int) -> list[Fill]:
        with self._lock:
            start = 0 if since is None else bisect.bisect_left(self._fills, since, key=_ts)
            return self._fills[start : start + limit]

    def equity(self, since: datetime | None, limit: int) -> list[EquityPoint]:
        with self._lock:
            start = 0 if since is None else bisect.bisect_left(self._equity, since, key=_ts)
            return self._equity[start : start + limit]

    def performance(self) -> PerformanceView:
        with self._lock:
            last = self._equity[-1].equity if self._equity else math.nan
            key = (len(self._equity), len(self._trades), last)
            if self._perf is not None and key == self._perf_key:
                return self._perf
            curve = np.fromiter((p.equity for p in self._equity), np.float64, len(self._equity))
            trades = pd.DataFrame(
                {
                    "exit_reason": [t.exit_reason for t in self._trades],
                    "pnl": np.asarray([t.pnl for t in self._trades], dtype=np.float64),
                }
            )
        m = compute_metrics(curve, self.initial_equity, self.calendar, trades=trades)
        perf = PerformanceView(
            calendar=self.calendar,
            bars=int(m["bars"] or 0),
            initial_equity=self.initial_equity,
            final_equity=float(m["final_equity"] or 0.0),
            total_return=_opt(m["total_return"]),
            sharpe=_opt(m["sharpe"]),
            max_drawdown=_opt(m["max_drawdown"]),
            win_rate=_opt(m["win_rate"]),
            n_trades=int(m["n_trades"] or 0),
        )
        with self._lock:
            self._perf_key, self._perf = key, perf
        return perf

    def risk(self) -> RiskView:
        stale = tuple(sorted({f.asset_class for f in self.feeds() if f.status == "stale"}))
        with self._lock:
            engine = self.engine
            kill_reason = engine.to_state()["kill_reason"]
            reasons: list[str] = []
            if engine.halt_until is not None:
                reasons.append("halted:daily_drawdown")
            if kill_reason is not None:
                reasons.append(f"halted:kill_switch:{kill_reason}")
            if engine.state is RiskState.REDUCING:
                reasons.append("reducing:operator")
            reasons.extend(f"reducing:feed_stale:{c.value}" for c in stale)
            return RiskView(engine.state, tuple(reasons), engine.settings, engine.halt_until, stale)

    def models(self) -> tuple[VersionInfo, ...]:
        return self._models

    def feeds(self) -> list[FeedView]:
        now = self._clock.now()
        out = []
        with self._lock:
            feeds = sorted(self._feeds.values(), key=lambda f: f.source)
            for f in feeds:
                limit = self._feed_limits[f.asset_class]
                if f.last_bar_ts is None:
                    lag, status = None, "waiting"
                else:
                    lag = max((now - f.last_bar_ts - BAR_INTERVAL).total_seconds(), 0.0)
                    status = "stale" if lag > limit else "ok"
                out.append(
                    FeedView(
                        f.source,
                        f.asset_class,
                        tuple(sorted(f.symbols)),
                        f.last_bar_ts,
                        lag,
                        limit,
                        status,  # type: ignore[arg-type]
                    )
                )
        return out

    # ------------------------------------------------------------------ LiveView: commands

    async def halt(self, reason: str) -> RiskView:
        return self._risk_command(lambda e: e.kill(reason))

    async def resume(self) -> RiskView:
        return self._risk_command(lambda e: e.resume())

    async def set_reducing(self, on: bool) -> RiskView:
        return self._risk_command(lambda e: e.set_reducing(on))

    def _risk_command(self, act: Callable[[RiskEngine], None]) -> RiskView:
        with self._lock:
            act(self.engine)
            if self._on_risk_change is not None:
                self._on_risk_change(self.engine)
            self._last_state = self.engine.state
            view = self.risk()
        self._events.publish(EventKind.RISK, self._clock.now(), view)
        return view

    async def promote(self, version: str) -> Promotion:
        """Promote in a worker thread (file IO), then refresh the in-memory list."""
        return await asyncio.to_thread(self._promote_sync, version)

    def _promote_sync(self, version: str) -> Promotion:
        if version not in {v.version for v in self._models}:
            self.refresh_models()  # a version saved since the last refresh
            if version not in {v.version for v in self._models}:
                raise UnknownVersion(version)
        cls = registry.version_asset_class(self.registry_dir, version)
        if cls is not None and cls is not self.calendar:
            raise OtherAssetClass(
                f"model version={version!r} is a {cls.value} model; "
                f"this account trades {self.calendar.value}"
            )
        previous = registry.promote(self.registry_dir, version)
        self.refresh_models()
        promotion = Promotion(previous, version)
        self._events.publish(EventKind.MODEL, self._clock.now(), promotion)
        return promotion

    # ------------------------------------------------------------------ fed by the live loop

    def refresh_models(self) -> None:
        """Re-read the registry (after a promotion or a retrain saved a version)."""
        self._models = tuple(registry.list_versions(self.registry_dir))

    def publish_signal(
        self, signal: Signal, decision: RiskDecision, computed_at: datetime | None = None
    ) -> SignalView | None:
        """Keep the signal and its decision, tell the stream; None if an older duplicate."""
        now = self._clock.now() if computed_at is None else computed_at
        view = SignalView.from_decision(signal, decision, now)
        if not self._signals.put(view):
            return None
        self._events.publish(EventKind.SIGNAL, now, view)
        self._note_risk_state(now)
        return view

    def _note_risk_state(self, now: datetime) -> None:
        with self._lock:
            state = self.engine.state
            changed = state is not self._last_state
            self._last_state = state
        if changed:
            self._events.publish(EventKind.RISK, now, self.risk())

    def record_order(
        self,
        order: Order,
        status: OrderStatus,
        ts: datetime,
        filled_qty: float = 0.0,
        avg_fill_price: float | None = None,
    ) -> OrderView:
        """Insert or update an order's latest state (``ts``: when it changed)."""
        require_utc("record_order", "ts", ts)
        with self._lock:
            held = self._orders.get(order.client_order_id)
            view = OrderView(
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                qty=order.qty,
                type=order.type,
                status=OrderStatus(status),
                created_at=order.ts if held is None else held.created_at,
                updated_at=ts,
                filled_qty=float(filled_qty),
                avg_fill_price=avg_fill_price,
                reduce_only=order.reduce_only,
                limit_price=order.limit_price,
                stop_loss=order.stop_loss,
                take_profit=order.take_profit,
            )
            self._orders[order.client_order_id] = view
            while len(self._orders) > self.max_history:
                self._orders.popitem(last=False)
        return view

    def record_fill(self, fill: Fill) -> None:
        with self._lock:
            bisect.insort_right(self._fills, fill, key=_ts)
            _trim(self._fills, self.max_history)
        self._events.publish(EventKind.FILL, fill.ts, fill)

    def record_trade(self, trade: ClosedTrade) -> None:
        with self._lock:
            self._trades.append(trade)
            _trim(self._trades, self.max_history)

    def mark(
        self,
        ts: datetime,
        equity: float,
        day_open_equity: float,
        positions: Mapping[str, Position],
        prices: Mapping[str, float],
    ) -> PortfolioView:
        """The account at the close of the bar that opened at ``ts``; one equity point per
        instant (a second mark at the same ts replaces the first)."""
        require_utc("mark", "ts", ts)
        if not math.isfinite(equity) or not day_open_equity > 0:
            raise ValueError(f"mark: equity={equity!r}, day_open_equity={day_open_equity!r}")
        view = portfolio_view(ts, equity, day_open_equity, positions, prices)
        with self._lock:
            if self._equity and ts < self._equity[-1].ts:
                raise ValueError(f"mark: ts={ts.isoformat()} is before the last mark")
            if self._equity and ts == self._equity[-1].ts:
                self._equity[-1] = EquityPoint(ts, float(equity))
            else:
                self._equity.append(EquityPoint(ts, float(equity)))
                _trim(self._equity, self.max_history)
            self._portfolio = view
        return view

    def add_feed(self, source: str, asset_class: AssetClass, symbols: Sequence[str] = ()) -> None:
        """Declare a source before its first bar, so /v1/feeds shows it as waiting."""
        with self._lock:
            feed = self._feeds.setdefault(source, _Feed(source, AssetClass(asset_class)))
            feed.symbols.update(symbols)

    def feed_bar(self, source: str, asset_class: AssetClass, symbol: str, bar_ts: datetime) -> None:
        """A bar (open time ``bar_ts``) arrived from ``source``."""
        require_utc("feed_bar", "bar_ts", bar_ts)
        with self._lock:
            feed = self._feeds.setdefault(source, _Feed(source, AssetClass(asset_class)))
            feed.symbols.add(symbol)
            if feed.last_bar_ts is None or bar_ts > feed.last_bar_ts:
                feed.last_bar_ts = bar_ts


def _ts(record: Fill | EquityPoint) -> datetime:
    return record.ts


def _trim(rows: list, cap: int) -> None:
    if len(rows) > cap:
        del rows[: len(rows) - cap]


def _opt(value: object) -> float | None:
    return None if value is None else float(value) + 0.0  # type: ignore[arg-type]  # no -0.0
