"""Event-driven backtest: bars of many tickers in time order, one account, the live risk engine.

The engine owns timing (a signal never does):
1. At the OPEN of a ticker's bar, the orders decided at that ticker's previous bar close fill
   (``app.broker.fill_model``: open +/- slippage, fee on the notional).
2. Inside the bar, the stop-loss / take-profit of its open position are checked with the bar's
   high and low (gap through a level fills at the open; stop first when both could hit).
3. At the CLOSE, every ticker with a bar at this time is marked; then ``RiskEngine.on_mark`` gets
   the mark-to-market portfolio (the daily drawdown halt flattens everything at the next open);
   then each signal computed on this bar goes through ``RiskEngine.decide`` with the bar's close
   as last price and the causal Wilder ATR(14) through this bar.

The day's opening equity (for the daily drawdown) is the equity at the instant the trading day of
the calendar asset class starts: the mark at that instant when a bar closes exactly on it (crypto
midnight), else the last mark before it (stocks: the previous session's close).

The hot loop walks plain Python lists (one per column and ticker) and asks the risk engine only
what it must: signals the engine itself marks as certain HOLDs (``RiskEngine.certain_holds``:
HOLD, below the gate) are counted with its reason keys without a call; ``on_mark`` runs when
``RiskEngine.mark_is_due`` says it would act; ``decide_fields`` takes the bulk-checked columns
instead of a Signal and a MarketSnapshot per bar; the portfolio snapshot is built only for a bar
that calls the engine. Every decision is still the engine's: the fills are bit-identical to
calling ``on_mark`` and ``decide`` on every bar (tests/unit/backtest/test_backtest_fastpath.py).
An engine subclass that overrides ``on_mark`` or ``decide`` (a recorder, a wrapper) gets every
call of that method with the objects, as before.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from app.backtest.inputs import BAR_NS, Ticker, prepare_tickers
from app.backtest.metrics import compute_metrics, drawdown_curve
from app.broker.fill_model import ATR_PERIOD
from app.broker.portfolio import FILL_COLUMNS, TRADE_COLUMNS, Portfolio
from app.broker.sim_fills import fill_intrabar_exit, fill_pending
from app.config import CostSettings, RiskSettings
from app.risk.calendar import next_trading_day_start
from app.risk.engine import CERTAIN_HOLD_REASON_KEYS, RiskEngine, same_direction_hold
from app.risk.snapshots import MarketSnapshot, PortfolioSnapshot
from app.types import (
    AssetClass,
    DecisionAction,
    Order,
    RiskState,
    Signal,
    SignalAction,
    from_ns,
    to_ns,
)

_BAR = timedelta(minutes=5)
_ACTIONS = (SignalAction.BUY, SignalAction.SELL, SignalAction.HOLD)
_HOLD = DecisionAction.HOLD
_STATE_TEXT = {state: state.value for state in RiskState}
# fill reason of the orders a decision carries (entries: "entry", or "reversal" at fill time)
_FILL_REASON = {DecisionAction.FLATTEN_ALL: "flatten", DecisionAction.CLOSE: "signal_close"}


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """Knobs of a run. ``calendar`` sets trading days and annualization; default: see
    :func:`default_calendar`."""

    initial_equity: float = 100_000.0
    risk: RiskSettings = field(default_factory=RiskSettings)
    costs: CostSettings = field(default_factory=CostSettings)
    atr_period: int = ATR_PERIOD
    calendar: AssetClass | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial_equity) and self.initial_equity > 0):
            raise ValueError(f"initial_equity={self.initial_equity!r}: must be finite > 0")


@dataclass(slots=True)
class BacktestResult:
    """What a run produced: curves, logs and counts. ``metrics()`` summarizes it."""

    initial_equity: float
    calendar: AssetClass
    equity: pd.DataFrame  # ts (bar open time), equity (at that bar's close), drawdown, risk_state
    trades: pd.DataFrame  # TRADE_COLUMNS
    fills: pd.DataFrame  # FILL_COLUMNS, in execution order
    decisions: Counter  # DecisionAction -> count (signals and on_mark flattens)
    hold_reasons: Counter  # reason key -> count, for signals the risk engine did not trade
    signals_run: int
    orders_unfilled: int
    orders_skipped: Counter  # reduce-only orders with nothing left to reduce, by reason
    traded_notional: float
    fees_paid: float
    exposed: np.ndarray  # per equity row: any position open at that close

    @property
    def final_equity(self) -> float:
        return float(self.equity["equity"].iloc[-1]) if len(self.equity) else self.initial_equity

    def metrics(self) -> dict[str, object]:
        out = compute_metrics(
            self.equity["equity"].to_numpy(),
            self.initial_equity,
            self.calendar,
            trades=self.trades,
            traded_notional=self.traded_notional,
            fees_paid=self.fees_paid,
            exposed=self.exposed,
        )
        out["signals_run"] = self.signals_run
        out["decisions"] = {str(k): v for k, v in sorted(self.decisions.items())}
        out["hold_reasons"] = dict(self.hold_reasons.most_common())
        out["orders_unfilled_at_end"] = self.orders_unfilled
        out["orders_skipped"] = dict(self.orders_skipped)
        out["halted_bars"] = int((self.equity["risk_state"] == "HALTED").sum())
        return out


def _reason_key(reason: str) -> str:
    """'confidence_below_gate:0.55<0.70' -> 'confidence_below_gate' (counts stay readable)."""
    head, _, tail = reason.partition(":")
    if head in ("halted", "capped", "close", "entry", "flatten"):
        head = f"{head}:{tail.split(':')[0]}"
    return head


def run_backtest(
    bars: Mapping[str, pd.DataFrame],
    signals: pd.DataFrame,
    asset_classes: Mapping[str, AssetClass],
    config: BacktestConfig | None = None,
    engine: RiskEngine | None = None,
) -> BacktestResult:
    """Run ``signals`` (columns ts, ticker, signal, confidence; ts on a bar of the ticker) over
    ``bars`` (ticker -> frame with ts, open, high, low, close) through the risk engine.

    A signal whose ``ts`` is not a bar of its ticker raises ValueError: filter bad rows first
    (``app.backtest.signals_io.check_signals`` does). ``engine`` defaults to a fresh
    ``RiskEngine(config.risk)``; pass one to start from a given state.
    """
    config = config or BacktestConfig()
    if not bars:
        raise ValueError("bars: no tickers given")
    for sym in bars:
        if sym not in asset_classes:
            raise ValueError(f"asset_classes has no entry for ticker={sym!r}")
    calendar = config.calendar or default_calendar([asset_classes[s] for s in bars])
    engine = engine if engine is not None else RiskEngine(config.risk)
    tickers, ts_arrays = prepare_tickers(bars, signals, asset_classes, config, engine)
    # A subclass overriding on_mark / decide sees every call (with objects), as it expects.
    sim = _Simulation(tickers, engine, calendar, config.initial_equity)
    sim.run(ts_arrays)
    return sim.result()


class _Simulation:
    """The state of one run and one method per phase of a bar time (open, close, signals)."""

    def __init__(
        self, tickers: list[Ticker], engine: RiskEngine, calendar: AssetClass, equity: float
    ) -> None:
        self.tickers = tickers
        self.engine = engine
        self.calendar = calendar
        self.initial_equity = equity
        self.pf = Portfolio(cash=equity)
        for t in tickers:
            self.pf.slot(t.symbol)
        self.multi = len(tickers) > 1  # one ticker: the risk engine marks it at last_price
        self.decisions: Counter = Counter()
        self.hold_reasons: Counter = Counter()
        self.skipped: Counter = Counter()
        self.reason_keys: dict[str, str] = {}
        self.signals_run = 0
        self.certain = [0] * len(CERTAIN_HOLD_REASON_KEYS)  # certain HOLDs by code, added last
        self.open_orders: tuple[Order, ...] = ()
        self.snapshot: PortfolioSnapshot | None = None
        self.snapshot_fresh = False  # self.snapshot describes the account at this bar close
        self.equity = equity  # at the current bar close
        self.now_ns = 0  # the current bar close (ns)
        self.by_symbol = {t.symbol: t for t in tickers}
        self.every_mark = type(engine).on_mark is not RiskEngine.on_mark
        self.every_decide = type(engine).decide is not RiskEngine.decide
        self.day_open_equity = equity
        self.prev_equity = equity
        self.next_day_ns: int | None = None
        self.eq_ts: list[int] = []
        self.eq_val: list[float] = []
        self.eq_state: list[str] = []
        self.eq_exposed: list[bool] = []

    def run(self, ts_arrays: list[np.ndarray]) -> None:
        """Walk every bar time in order; ties (several tickers at one time) form one group."""
        all_ts = np.concatenate(ts_arrays)
        all_k = np.concatenate(
            [np.full(len(a), k, dtype=np.int64) for k, a in enumerate(ts_arrays)]
        )
        all_j = np.concatenate([np.arange(len(a), dtype=np.int64) for a in ts_arrays])
        order = np.argsort(all_ts, kind="stable")  # by time, ties in ticker order
        ev_ts = all_ts[order].tolist()
        ev_k, ev_j = all_k[order].tolist(), all_j[order].tolist()
        if len(ev_ts) < 2 or (np.diff(all_ts[order]) > 0).all():
            self._run_untied(ev_ts, ev_k, ev_j)
            return
        group = list(zip(ev_k, ev_j, strict=True))
        n, i = len(ev_ts), 0
        while i < n:
            ts_ns = ev_ts[i]
            end = i + 1
            while end < n and ev_ts[end] == ts_ns:
                end += 1
            events = group[i:end]
            for k, j in events:
                self._open_and_intrabar(self.tickers[k], j, ts_ns)
            self._close(ts_ns, events)
            i = end

    def _run_untied(self, ev_ts: list[int], ev_k: list[int], ev_j: list[int]) -> None:
        """The same walk when no two bars share a time (one ticker, or disjoint grids): one
        event per bar time; a flat ticker with nothing queued is just marked at its close."""
        tickers = self.tickers
        slots = [self.pf.slots[t.symbol] for t in tickers]
        marks = self.pf.marks
        open_and_intrabar, close = self._open_and_intrabar, self._close
        for ts_ns, k, j in zip(ev_ts, ev_k, ev_j, strict=True):
            t = tickers[k]
            if t.pending or slots[k].qty != 0.0:
                open_and_intrabar(t, j, ts_ns)
            else:
                marks[t.symbol] = t.close[j]
            close(ts_ns, ((k, j),))

    def _open_and_intrabar(self, t: Ticker, j: int, ts_ns: int) -> None:
        """Fill the orders queued for this ticker at the open; then its stop / take-profit."""
        pf = self.pf
        slot = pf.slots[t.symbol]
        if t.pending:
            atr_prev = t.atr[j - 1] if j > 0 else math.nan
            entries_allowed = self.engine.state is RiskState.ACTIVE
            fill_pending(
                pf,
                t.symbol,
                t.fill_model,
                t.pending,
                ts_ns,
                t.open[j],
                atr_prev,
                self.skipped,
                entries_allowed,
            )
            self.open_orders = tuple(o for tk in self.tickers for o, _ in tk.pending)
        if slot.qty != 0.0:
            atr_prev = t.atr[j - 1] if j > 0 else math.nan
            bar = (t.open[j], t.high[j], t.low[j])
            fill_intrabar_exit(pf, t.symbol, t.fill_model, ts_ns, bar, atr_prev)
        pf.marks[t.symbol] = t.close[j]

    def _close(self, ts_ns: int, events: Sequence[tuple[int, int]]) -> None:
        """Mark, roll the trading day, on_mark once (on the run's calendar), then the signals."""
        pf = self.pf
        equity, exposed = pf.mark_to_market()
        now_ns = ts_ns + BAR_NS
        if self.next_day_ns is None:
            self.next_day_ns = to_ns(next_trading_day_start(from_ns(now_ns), self.calendar))
        elif now_ns >= self.next_day_ns:
            # the mark at the boundary instant itself, else the last mark before it
            self.day_open_equity = equity if now_ns == self.next_day_ns else self.prev_equity
            self.next_day_ns = to_ns(next_trading_day_start(from_ns(now_ns), self.calendar))
        k0, j0 = events[0]
        now = self.tickers[k0].close_dt[j0]
        self.equity = equity
        self.now_ns = now_ns
        self.snapshot_fresh = False
        engine = self.engine
        # One account, one daily drawdown: the halt lifts exactly when day_open_equity rolls.
        if self.every_mark or engine.mark_is_due(equity, self.day_open_equity, now):
            decision = engine.on_mark(self._account(), now, self.calendar)
            if decision is not None:
                self.decisions[decision.action] += 1
                if decision.orders:
                    self._queue(decision.orders, "flatten")
        for k, j in events:
            t = self.tickers[k]
            route = t.route[j]
            if route == 0 or (route > 0 and self.every_decide):
                self._decide(t, j, now)
            elif route > 0:  # the engine's own certain HOLD: counted as decide() would be
                if not self.certain[route]:  # first one: the counters get the key in order
                    self.decisions[_HOLD] += 0
                    self.hold_reasons[CERTAIN_HOLD_REASON_KEYS[route]] += 0
                self.certain[route] += 1
        self.eq_ts.append(ts_ns)
        self.eq_val.append(equity)
        self.eq_state.append(_STATE_TEXT[engine.state])
        self.eq_exposed.append(exposed)
        self.prev_equity = equity

    def _account(self) -> PortfolioSnapshot:
        """The portfolio snapshot of this bar close, built on the first call that needs it."""
        if not self.snapshot_fresh:
            positions = self.pf.positions()
            snap = self.snapshot
            if (
                snap is None
                or self.equity != snap.equity
                or self.day_open_equity != snap.day_open_equity
                or positions
                or snap.positions
                or self.open_orders
            ):  # a flat, unchanged account reuses its (immutable) snapshot
                self._snapshot(positions)
            self.snapshot_fresh = True
        return self.snapshot

    def _decide(self, t: Ticker, j: int, now: datetime) -> None:
        self.signals_run += 1
        code = t.signal[j]
        if self.every_decide:
            signal = Signal(t.symbol, now - _BAR, _ACTIONS[code], t.confidence[j])
            market = MarketSnapshot(t.symbol, now, t.close[j], t.atr[j], t.asset_class)
            decision = self.engine.decide(signal, self._account(), market)
        else:
            # steps 1-5 passed (on_mark ran, not a certain HOLD): a position already pointing
            # the signal's way is the engine's HOLD, known from the slot without a snapshot
            reasons = same_direction_hold(1 if code == 0 else -1, self.pf.slots[t.symbol].qty)
            if reasons is not None:
                self.decisions[_HOLD] += 1
                self._count_reasons(reasons)
                return
            decision = self.engine.decide_fields(
                t.symbol,
                now,
                _ACTIONS[code],
                t.confidence[j],
                t.close[j],
                t.atr[j],
                t.asset_class,
                self._account(),
                None,
                self.now_ns if t.whole_us else None,
            )
        action = decision.action
        self.decisions[action] += 1
        if decision.orders:
            self._queue(decision.orders, _FILL_REASON.get(action, "entry"))
            return
        self._count_reasons(decision.reasons)

    def _count_reasons(self, reasons: tuple[str, ...]) -> None:
        keys = self.reason_keys
        for r in reasons:
            key = keys.get(r)
            if key is None:
                key = keys[r] = _reason_key(r)
            self.hold_reasons[key] += 1

    def _queue(self, orders: tuple[Order, ...], reason: str) -> None:
        """Queue orders for their ticker's next open; the next decision sees them pending."""
        by_symbol = self.by_symbol
        for order in orders:
            by_symbol[order.symbol].pending.append((order, reason))
        self.open_orders = tuple(o for tk in self.tickers for o, _ in tk.pending)
        self.snapshot_fresh = False  # rebuilt by the next engine call of this close, if any

    def _snapshot(self, positions: Mapping) -> None:
        self.snapshot = PortfolioSnapshot(
            self.equity,
            self.day_open_equity,
            positions,
            self.open_orders,
            _prices(self.pf.marks, self.multi),
        )

    def result(self) -> BacktestResult:
        pf = self.pf
        for code, count in enumerate(self.certain):
            if count:
                self.signals_run += count
                self.decisions[_HOLD] += count
                self.hold_reasons[CERTAIN_HOLD_REASON_KEYS[code]] += count
        self.certain = [0] * len(CERTAIN_HOLD_REASON_KEYS)
        last_ns = self.eq_ts[-1] if self.eq_ts else 0
        equity = np.asarray(self.eq_val, dtype=np.float64)
        ts = pd.to_datetime(np.asarray(self.eq_ts, dtype="int64"), utc=True)
        equity_frame = pd.DataFrame(
            {
                "ts": ts.astype("datetime64[ns, UTC]"),
                "equity": equity,
                "drawdown": drawdown_curve(equity) if len(equity) else equity,
                "risk_state": self.eq_state,
            }
        )
        return BacktestResult(
            initial_equity=self.initial_equity,
            calendar=self.calendar,
            equity=equity_frame,
            trades=_trades_frame(pf.trades + pf.open_trades(last_ns)),
            fills=_fills_frame(pf.fills),
            decisions=self.decisions,
            hold_reasons=self.hold_reasons,
            signals_run=self.signals_run,
            orders_unfilled=sum(len(t.pending) for t in self.tickers),
            orders_skipped=self.skipped,
            traded_notional=pf.traded_notional,
            fees_paid=pf.fees_paid,
            exposed=np.asarray(self.eq_exposed, dtype=bool),
        )


# --------------------------------------------------------------------------- loop helpers


def default_calendar(classes: list[AssetClass]) -> AssetClass:
    """The calendar of the densest bar grid present: crypto (24/7), else forex (24/5), else
    stocks. The equity curve has a row per bar time of any ticker, so this grid sets its pace."""
    for candidate in (AssetClass.CRYPTO, AssetClass.FOREX, AssetClass.STOCKS):
        if candidate in classes:
            return candidate
    raise ValueError(f"asset classes {classes!r}: none of crypto, forex, stocks")


def _prices(marks: dict[str, float], multi: bool) -> dict[str, float] | None:
    """Marks of other tickers for the risk engine's gross-exposure cap (a copy: snapshots are
    immutable). With one ticker the engine marks it at ``last_price`` itself."""
    return dict(marks) if multi else None


def _trades_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
    for col in ("entry_ts", "exit_ts"):
        frame[col] = pd.to_datetime(frame[col].astype("int64"), utc=True).astype(
            "datetime64[ns, UTC]"
        )
    return frame


def _fills_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(FILL_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), utc=True).astype(
        "datetime64[ns, UTC]"
    )
    return frame
