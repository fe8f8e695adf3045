"""``TradingSession``: one bar close through model -> risk -> execution, as the backtest does it.

Per bar close (every ticker of one asset class closed the bar that opened at ``ts``), in the
backtester's order (``app/backtest/engine.py``), so replaying a series in paper mode gives the
fills ``backtest --signals`` gives on the same signals and bars:

1. each ticker's bar goes to ``ExecutionEngine.on_bar``: the orders decided at its previous
   close fill at this bar's open, then the position's stop-loss / take-profit inside the bar
   (the paper venue runs the backtester's own fill functions, ``app.broker.sim_fills``);
2. the account is marked at the closes (``ExecutionEngine.mark``: the backtester's
   day-open-equity rule) and ``RiskEngine.on_mark`` runs (the daily drawdown flatten);
3. the model runs once over every ticker's window; each Signal goes through
   ``RiskEngine.decide`` with the bar's close as last price and the causal Wilder ATR through
   this bar (``app.broker.fill_model.wilder_atr`` on the ticker's whole history, as the
   backtester computes it; ``RunningATR`` keeps it in O(1) per bar, bit for bit); approved
   decisions go to ``ExecutionEngine.execute``;
4. ``ExecutionEngine.flush``: what changed since the last venue call is stored in one write
   (every change was already stored before any later venue call).

Staleness (DESIGN.md, "A stale feed or signal never opens a position"): a signal whose bar
closed more than ``stale_bars`` bars before the clock's now, or a ticker whose asset class's
feed is REDUCING, opens nothing: without a position the decision is a HOLD with the reason and
the risk engine is not asked; with one, the engine still decides (it can close, never open).

Everything that happened is kept in ``SessionRecords`` and, when given, published to the
``MemoryLiveView`` the API serves.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np

from app.broker.fill_model import ATR_PERIOD, RunningATR
from app.clock import Clock
from app.live.model import SignalModel
from app.risk.engine import RiskEngine
from app.risk.snapshots import MarketSnapshot, PortfolioSnapshot
from app.types import (
    BAR_INTERVAL,
    AssetClass,
    Bar,
    DecisionAction,
    Fill,
    Order,
    OrderStatus,
    RiskDecision,
    RiskState,
    Side,
    Signal,
    from_ns,
)

if TYPE_CHECKING:
    from app.broker.portfolio import Portfolio


class ClosedBars(Protocol):
    """What a feed hands over when every ticker of its class closed one bar."""

    @property
    def ts(self) -> datetime: ...  # open time of the closed bar

    @property
    def bars(self) -> Mapping[str, Bar]: ...  # ticker -> the closed bar

    @property
    def windows(self) -> Mapping[str, np.ndarray]: ...  # ticker -> raw (lookback, features)


class LiveRecorder(Protocol):
    """Where the session publishes what happened (``app.serve.memory.MemoryLiveView``)."""

    def add_feed(self, source: str, asset_class: AssetClass, symbols: Sequence[str] = ()): ...
    def feed_bar(self, source: str, asset_class: AssetClass, symbol: str, bar_ts: datetime): ...
    def feeds(self) -> list: ...
    def publish_signal(self, signal: Signal, decision: RiskDecision, computed_at=None): ...  # noqa: ANN001
    def record_order(self, order: Order, status: OrderStatus, ts: datetime, *a: object): ...
    def record_fill(self, fill: Fill) -> None: ...
    def mark(self, ts: datetime, equity: float, day_open_equity: float, positions, prices): ...  # noqa: ANN001


class SignalSource(Protocol):
    """A model served elsewhere (the Serve graph's Model deployment)."""

    version: str

    async def signals(self, ts: datetime, windows: Mapping[str, np.ndarray]) -> dict: ...


class Execution(Protocol):
    """The part of ``app.broker.execution.ExecutionEngine`` the session drives."""

    pf: Portfolio

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def on_bar(self, bar: Bar) -> None: ...
    async def execute(self, decision: RiskDecision) -> list: ...
    def mark(self, now: datetime) -> PortfolioSnapshot: ...
    def snapshot(self) -> PortfolioSnapshot: ...
    def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class EquityRow:
    ts: datetime  # open time of the bar whose close was marked
    equity: float
    risk_state: RiskState


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one bar close produced."""

    ts: datetime
    signals: tuple[Signal, ...]
    decisions: tuple[RiskDecision, ...]
    fills: tuple[Fill, ...]
    equity: float


@dataclass
class SessionRecords:
    """Everything the session saw and did, in order (the worker writes it to --out)."""

    signals: list[Signal] = field(default_factory=list)
    decisions: list[RiskDecision] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    equity: list[EquityRow] = field(default_factory=list)
    orders: int = 0
    bars: int = 0
    errors: list[str] = field(default_factory=list)


class TradingSession:
    """The live loop of one account, without Ray: feed it ``ClosedBars`` in time order."""

    def __init__(
        self,
        *,
        model: SignalModel | SignalSource,
        risk: RiskEngine,
        execution: Execution,
        asset_classes: Mapping[str, AssetClass],
        calendar: AssetClass,
        clock: Clock,
        view: LiveRecorder | None = None,
        stale_bars: int = 2,
        atr_period: int = ATR_PERIOD,
        source: str = "live",
        fill_book: Portfolio | None = None,
        on_risk_change: Callable[[RiskEngine], None] | None = None,
    ) -> None:
        if stale_bars < 1:
            raise ValueError(f"stale_bars={stale_bars!r}: must be >= 1")
        self.model = model
        self.risk = risk
        self.execution = execution
        self.asset_classes = dict(asset_classes)
        self.calendar = AssetClass(calendar)
        self.clock = clock
        self.view = view
        self.stale_after = stale_bars * BAR_INTERVAL
        self.atr_period = atr_period
        self.source = source
        # the rows fills.csv is written from: the paper venue's (with slippage) when paper
        self.fill_book = fill_book
        self.on_risk_change = on_risk_change
        self.records = SessionRecords()
        self.reducing_classes: set[AssetClass] = set()  # feeds silent beyond their limit
        self._atr: dict[str, RunningATR] = {}
        self._last_ts: datetime | None = None
        self._n_fills = 0

    def swap_model(self, model: SignalModel | SignalSource) -> None:
        """Serve another version from the next bar close on (a promotion)."""
        self.model = model

    async def start(self) -> None:
        """Reconcile with the venue before the first order (``ExecutionEngine.start``)."""
        await self.execution.start()
        self._n_fills = len(self.execution.pf.fills)
        if self.view is not None:
            for ac in sorted(set(self.asset_classes.values())):
                syms = [s for s, c in self.asset_classes.items() if c is ac]
                self.view.add_feed(f"{self.source}-{ac.value}", ac, syms)

    async def stop(self) -> None:
        await self.execution.stop()

    # ------------------------------------------------------------------ one bar close

    async def on_bar_close(self, closed: ClosedBars) -> StepResult:
        ts = closed.ts
        if self._last_ts is not None and ts <= self._last_ts:
            raise ValueError(
                f"bar close ts={ts.isoformat()}: not after the last one {self._last_ts.isoformat()}"
            )
        self._last_ts = ts
        now = ts + BAR_INTERVAL
        bars = closed.bars
        atr: dict[str, float] = {}
        for sym, bar in bars.items():  # 1. fills at the open, stops inside the bar
            if sym not in self.asset_classes:
                raise ValueError(f"bar of ticker={sym!r}: not in the session's universe")
            await self.execution.on_bar(bar)
            atr[sym] = self._atr_through(bar)
            if self.view is not None:
                ac = self.asset_classes[sym]
                self.view.feed_bar(f"{self.source}-{ac.value}", ac, sym, bar.ts)
        self.records.bars += len(bars)
        decisions: list[RiskDecision] = []
        snapshot = self.execution.mark(now)  # 2. mark, then the daily drawdown rule
        equity = snapshot.equity
        flat = self.risk.on_mark(snapshot, now, self.calendar)
        if flat is not None:
            decisions.append(flat)
            await self._execute(flat)
        windows = {s: w for s, w in closed.windows.items() if s in bars}
        signals = self.model.signals(ts, windows)  # 3. one batched model call
        if inspect.isawaitable(signals):  # a served model (app/serve/deployments.py)
            signals = await signals
        age = self.clock.now() - now
        for sym, bar in bars.items():
            signal = signals.get(sym)
            if signal is None:
                continue
            decision = self._blocked(signal, age)
            if decision is None:
                market = MarketSnapshot(sym, now, bar.close, atr[sym], self.asset_classes[sym])
                decision = self.risk.decide(signal, self.execution.snapshot(), market)
            decisions.append(decision)
            await self._execute(decision)
            if self.view is not None:
                self.view.publish_signal(signal, decision, self.clock.now())
        fills = self._new_fills()
        self._record(ts, equity, tuple(signals.values()), decisions, fills)
        self.execution.flush()  # 4. the changes since the last venue call, in one write
        return StepResult(ts, tuple(signals.values()), tuple(decisions), fills, equity)

    def _blocked(self, signal: Signal, age: object) -> RiskDecision | None:
        """The HOLD of a signal that may open nothing (stale, or its feed REDUCING) while the
        ticker has no position; None when the risk engine decides."""
        sym = signal.ticker
        reasons: tuple[str, ...] = ()
        if age > self.stale_after:  # type: ignore[operator]
            reasons += (f"stale_signal:{age.total_seconds():.0f}s",)  # type: ignore[attr-defined]
        ac = self.asset_classes[sym]
        if ac in self.reducing_classes or self._feed_stale(ac):
            reasons += (f"reducing:feed_stale:{ac.value}",)
        if not reasons or self.execution.pf.qty(sym) != 0.0:
            return None
        now = signal.ts + BAR_INTERVAL
        return RiskDecision(now, sym, DecisionAction.HOLD, self.risk.state, (), reasons)

    def _feed_stale(self, ac: AssetClass) -> bool:
        if self.view is None:
            return False
        return any(f.asset_class is ac and f.status == "stale" for f in self.view.feeds())

    async def _execute(self, decision: RiskDecision) -> None:
        if not decision.orders:
            return
        records = await self.execution.execute(decision)
        self.records.orders += len(decision.orders)
        if self.view is not None:
            for rec in records:
                self._publish_order(rec)
            if self.on_risk_change is not None:
                self.on_risk_change(self.risk)

    def _publish_order(self, rec: object) -> None:
        order: Order = rec.order  # type: ignore[attr-defined]
        status: OrderStatus = rec.status  # type: ignore[attr-defined]
        self.view.record_order(  # type: ignore[union-attr]
            order,
            status,
            getattr(rec, "updated", None) or self.clock.now(),
            getattr(rec, "filled_qty", 0.0),
            getattr(rec, "avg_fill_price", None),
        )

    def _atr_through(self, bar: Bar) -> float:
        """The causal Wilder ATR through ``bar``, computed as the backtester computes it."""
        atr = self._atr.get(bar.symbol)
        if atr is None:
            atr = self._atr[bar.symbol] = RunningATR(self.atr_period)
        return atr.update(bar.high, bar.low, bar.close)

    def _new_fills(self) -> tuple[Fill, ...]:
        rows = self.execution.pf.fills
        new = rows[self._n_fills :]
        self._n_fills = len(rows)
        return tuple(_fill_of(r) for r in new)

    def _record(
        self,
        ts: datetime,
        equity: float,
        signals: Iterable[Signal],
        decisions: Sequence[RiskDecision],
        fills: tuple[Fill, ...],
    ) -> None:
        rec = self.records
        rec.signals.extend(signals)
        rec.decisions.extend(decisions)
        rec.fills.extend(fills)
        rec.equity.append(EquityRow(ts, equity, self.risk.state))
        if self.view is not None:
            for fill in fills:
                self.view.record_fill(fill)
            snap = self.execution.snapshot()
            self.view.mark(ts, equity, snap.day_open_equity, snap.positions, snap.prices or {})

    def fill_rows(self) -> list[tuple]:
        """Fill rows in ``app.broker.portfolio.FILL_COLUMNS`` order (for fills.csv)."""
        book = self.fill_book if self.fill_book is not None else self.execution.pf
        return list(book.fills)


def _fill_of(row: tuple) -> Fill:
    """A booked portfolio row (FILL_COLUMNS order) as a Fill."""
    seq, ts_ns, sym, coid, sign, qty, _ref, _slip, _rate, price, fee, reason = row
    return Fill(
        coid,
        sym,
        Side.BUY if sign > 0 else Side.SELL,
        qty,
        price,
        fee,
        from_ns(ts_ns),
        reason,
        f"{coid}:{seq}",
    )
