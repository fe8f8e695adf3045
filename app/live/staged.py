"""``StagedSession``: ``TradingSession``'s bar close over stages that may live elsewhere.

The same order as ``TradingSession.on_bar_close`` (and the backtester), cut into one call per
stage (``app/live/stages.py``): execution ``on_bars`` (fills at the open, stops, mark) and the
model (they are independent: awaited together), then risk ``decide_bar`` (on_mark, then every
signal), then execution ``execute`` (skipped when nothing was approved). So a bar close costs
two or three hops, whatever the number of tickers.

The stages are anything whose methods return values or awaitables: the plain ``RiskStage`` /
``ExecutionStage`` in one process (tests), or Ray handles (``app/serve/graph.py``). The session
keeps the records, the causal ATR per ticker and the ``MemoryLiveView`` the API serves.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from app.broker.fill_model import ATR_PERIOD, wilder_atr
from app.clock import Clock
from app.live.session import EquityRow, LiveRecorder, SessionRecords, StepResult
from app.live.stages import RiskChanges, RiskCommand, RiskRequest, RiskStatus
from app.risk.snapshots import MarketSnapshot
from app.types import BAR_INTERVAL, AssetClass, Bar, Signal


async def _value(x: Any) -> Any:
    return await x if inspect.isawaitable(x) else x


class StagedSession:
    """The live loop of one account over a model, a risk and an execution stage."""

    def __init__(
        self,
        *,
        model: Any,  # .signals(ts, windows) -> {ticker: Signal} (or an awaitable of it)
        risk: Any,  # RiskStage-like: status(), decide_bar(req), command(cmd)
        execution: Any,  # ExecutionStage-like: start, on_bars, execute, fill_rows, stop
        asset_classes: Mapping[str, AssetClass],
        calendar: AssetClass,
        clock: Clock,
        view: LiveRecorder | None = None,
        stale_bars: int = 2,
        atr_period: int = ATR_PERIOD,
        source: str = "live",
        on_status: Callable[[RiskStatus], None] | None = None,
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
        self.source = source
        self.on_status = on_status  # the API's risk mirror (app/serve/graph.py)
        self._lock = asyncio.Lock()  # bar closes and operator commands, one at a time
        self.records = SessionRecords()
        self.reducing_classes: set[AssetClass] = set()
        self.status: RiskStatus | None = None
        self.last_ts = None
        self._changes: RiskChanges | None = None
        self.atr_period = atr_period
        self._history: dict[str, tuple[list[float], list[float], list[float]]] = {}

    def swap_model(self, model: Any) -> None:
        self.model = model

    def _set_status(self, status: RiskStatus) -> None:
        self.status = status
        if self.on_status is not None:
            self.on_status(status)

    async def start(self) -> None:
        self._set_status(await _value(self.risk.status()))
        reply = await _value(self.execution.start(self.status))
        self._changes = reply.changes
        if self.view is not None:
            for ac in sorted(set(self.asset_classes.values())):
                syms = [s for s, c in self.asset_classes.items() if c is ac]
                self.view.add_feed(f"{self.source}-{ac.value}", ac, syms)

    async def stop(self) -> None:
        await _value(self.execution.stop())

    async def command(self, cmd: RiskCommand) -> RiskStatus:
        """An operator command, applied by the risk stage; the status the next bar uses."""
        async with self._lock:
            self._set_status(await _value(self.risk.command(cmd)))
        return self.status  # type: ignore[return-value]

    async def flatten(self, reason: str) -> int:
        """The kill switch with its flatten sent now (``--flatten-on-exit``): the risk stage's
        ``on_mark`` at the last close, executed; returns how many orders went out."""
        await self.command(RiskCommand("halt", reason=reason))
        async with self._lock:
            if self.last_ts is None:
                return 0
            now = self.last_ts + BAR_INTERVAL
            account = await _value(self.execution.start(self.status))
            req = RiskRequest(now, self.calendar, account.snapshot, (), (), (), self._changes)
            verdict = await _value(self.risk.decide_bar(req))
            self._set_status(verdict.status)
            self._changes = None
            if verdict.flatten is None or not verdict.flatten.orders:
                return 0
            await _value(self.execution.execute((verdict.flatten,), self.status))
            self.records.decisions.append(verdict.flatten)
            self.records.orders += len(verdict.flatten.orders)
            return len(verdict.flatten.orders)

    async def fill_rows(self) -> list[tuple]:
        return await _value(self.execution.fill_rows())

    async def on_bar_close(self, closed: Any) -> StepResult:
        async with self._lock:
            return await self._step(closed)

    async def _step(self, closed: Any) -> StepResult:
        ts = closed.ts
        if self.last_ts is not None and ts <= self.last_ts:
            raise ValueError(
                f"bar close ts={ts.isoformat()}: not after the last one {self.last_ts.isoformat()}"
            )
        if self.status is None:
            raise RuntimeError("StagedSession.start() was not awaited")
        self.last_ts = ts
        now = ts + BAR_INTERVAL
        bars = dict(closed.bars)
        atr: dict[str, float] = {}
        for sym, bar in bars.items():
            if sym not in self.asset_classes:
                raise ValueError(f"bar of ticker={sym!r}: not in the session's universe")
            atr[sym] = self._atr_through(bar)
            if self.view is not None:
                ac = self.asset_classes[sym]
                self.view.feed_bar(f"{self.source}-{ac.value}", ac, sym, bar.ts)
        self.records.bars += len(bars)
        windows = {s: w for s, w in closed.windows.items() if s in bars}
        marked, answer = await asyncio.gather(  # 1. fills, stops, mark | 3. the model
            _value(self.execution.on_bars(tuple(bars.values()), now, self.status)),
            _value(self.model.signals(ts, windows)),
        )
        signals: list[Signal] = [answer[s] for s in bars if s in answer]
        age = self.clock.now() - now
        req = RiskRequest(
            now,
            self.calendar,
            marked.snapshot,
            tuple(signals),
            tuple(
                MarketSnapshot(
                    s.ticker, now, bars[s.ticker].close, atr[s.ticker], self.asset_classes[s.ticker]
                )
                for s in signals
            ),  # fmt: skip
            tuple(self._blocked(s, age) for s in signals),
            self._merge(self._changes, marked.changes),
        )
        verdict = await _value(self.risk.decide_bar(req))  # 2. on_mark, 3. every signal
        self._set_status(verdict.status)
        self._changes = None
        decisions = verdict.ordered
        fills = marked.fills
        if any(d.orders for d in decisions):  # 4. the approved orders
            sent = await _value(self.execution.execute(decisions, self.status))
            self._changes = sent.changes
            fills += sent.fills
            self.records.orders += sum(len(d.orders) for d in decisions)
            if self.view is not None:
                for rec in sent.orders:
                    self.view.record_order(
                        rec.order,
                        rec.status,
                        rec.updated or self.clock.now(),
                        rec.filled_qty,
                        rec.avg_fill_price,
                    )
            snapshot = sent.snapshot
        else:
            snapshot = marked.snapshot
        if self.view is not None:
            for signal, decision in zip(signals, verdict.decisions, strict=True):
                self.view.publish_signal(signal, decision, self.clock.now())
        equity = marked.snapshot.equity
        rec = self.records
        rec.signals.extend(signals)
        rec.decisions.extend(decisions)
        rec.fills.extend(fills)
        rec.equity.append(EquityRow(ts, equity, self.status.state))
        if self.view is not None:
            for fill in fills:
                self.view.record_fill(fill)
            prices = snapshot.prices or {}
            self.view.mark(ts, equity, snapshot.day_open_equity, snapshot.positions, prices)
        return StepResult(ts, tuple(signals), decisions, fills, equity)

    def _blocked(self, signal: Signal, age: Any) -> tuple[str, ...]:
        """Why ``signal`` may open nothing (TradingSession's staleness rules); () = decide."""
        reasons: tuple[str, ...] = ()
        if age > self.stale_after:
            reasons += (f"stale_signal:{age.total_seconds():.0f}s",)
        ac = self.asset_classes[signal.ticker]
        if ac in self.reducing_classes or self._feed_stale(ac):
            reasons += (f"reducing:feed_stale:{ac.value}",)
        return reasons

    def _feed_stale(self, ac: AssetClass) -> bool:
        if self.view is None:
            return False
        return any(f.asset_class is ac and f.status == "stale" for f in self.view.feeds())

    def _atr_through(self, bar: Bar) -> float:
        """The causal Wilder ATR through ``bar``, as the backtester (and TradingSession)
        computes it."""
        highs, lows, closes = self._history.setdefault(bar.symbol, ([], [], []))
        highs.append(bar.high)
        lows.append(bar.low)
        closes.append(bar.close)
        if len(closes) <= self.atr_period:
            return math.nan
        return float(wilder_atr(highs, lows, closes, self.atr_period)[-1])

    @staticmethod
    def _merge(a: RiskChanges | None, b: RiskChanges | None) -> RiskChanges | None:
        return b if a is None else a.merged(b)
