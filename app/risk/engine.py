"""The deterministic risk engine: a signal in, a decision with its reasons out.

A small state machine over three states (see docs/RISK.md for every rule and reason string):

- ACTIVE: entries allowed within the limits;
- REDUCING: exits only (set by the operator);
- HALTED: no entries; every position is flattened once when the halt begins. A daily-drawdown
  halt lifts by itself at the start of the next trading day of the asset class that tripped it;
  a manual halt (kill switch) lasts until ``resume()``.

Determinism: the engine reads time only from its inputs, and its whole memory (flags, the
order-rate window, recent client order ids) round-trips through ``to_state``/``from_state``.
The common paths (HOLD signal, confidence below the gate) return after a few comparisons.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from app.config import RiskSettings
from app.risk.calendar import next_trading_day_start
from app.risk.engine_state import STATE_VERSION, parse_state
from app.risk.limits import Limits
from app.risk.order_checks import bracket_problems, cap_problems, reduce_only_problems
from app.risk.order_guard import OrderGuard
from app.risk.order_ids import client_order_id, order_id_ns, same_direction_hold
from app.risk.rules import (
    drawdown_breached,
    drawdown_reason,
    equity_breaches_drawdown,
    gross_exposure,
    occupied_symbols,
    open_positions_problem,
    price_band_problem,
    rate_limit_problem,
    stop_levels,
)
from app.risk.sizing import confidence_scale, entry_quantity
from app.risk.snapshots import MarketSnapshot, PortfolioSnapshot
from app.types import (
    AssetClass,
    DecisionAction,
    Order,
    OrderType,
    RiskDecision,
    RiskState,
    Side,
    Signal,
    SignalAction,
    require_utc,
    to_ns,
)

__all__ = [
    "MarketSnapshot",
    "PortfolioSnapshot",
    "RiskEngine",
    "PORTFOLIO",
    "client_order_id",
    "same_direction_hold",
]

PORTFOLIO = "*"  # RiskDecision.symbol of portfolio-wide decisions (FLATTEN_ALL)

_HOLD = DecisionAction.HOLD
_ACTIVE, _REDUCING, _HALTED = RiskState.ACTIVE, RiskState.REDUCING, RiskState.HALTED
_SIGNAL_HOLD = ("signal_hold",)
_REDUCING_REASON = ("reducing:exits_only",)
_HALTED_DD = ("halted:daily_drawdown",)
_HALTED_KILL = ("halted:kill_switch",)
BELOW_GATE = "confidence_below_gate"  # reason prefix; the full reason adds the numbers

# Codes of ``RiskEngine.certain_holds``: what decide() would answer without looking at the account.
NEEDS_DECIDE, HOLD_SIGNAL, HOLD_BELOW_GATE = 0, 1, 2
CERTAIN_HOLD_REASON_KEYS = ("", _SIGNAL_HOLD[0], BELOW_GATE)  # reason key per code


class RiskEngine:
    """Turns signals into approved orders or reasoned refusals; one instance per account."""

    __slots__ = (
        "settings",
        "_limits",
        "_guard",
        "_kill_reason",
        "_reducing",
        "_halt_until",
        "_flatten_pending",
        "_state",
        "_symbol_reducing",
    )

    def __init__(self, settings: RiskSettings) -> None:
        self.settings = settings
        self._limits = Limits.from_settings(settings)
        self._guard = OrderGuard(settings.max_orders_per_minute)
        self._kill_reason: str | None = None
        self._reducing = False
        self._halt_until: datetime | None = None  # daily-drawdown halt lifts at this instant
        self._flatten_pending = False  # a manual halt flattens at the next input
        self._state = _ACTIVE
        self._symbol_reducing: dict[str, str] = {}  # symbol -> why entries there are refused

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> RiskState:
        return self._state

    @property
    def halt_until(self) -> datetime | None:
        """When the current daily-drawdown halt lifts (None when there is none)."""
        return self._halt_until

    def _refresh_state(self) -> None:
        if self._kill_reason is not None or self._halt_until is not None:
            self._state = _HALTED
        elif self._reducing:
            self._state = _REDUCING
        else:
            self._state = _ACTIVE

    def _blocked_reasons(self) -> tuple[str, ...]:
        """Why no entry is possible in the current (non-ACTIVE) state."""
        if self._halt_until is not None:
            return _HALTED_DD
        if self._kill_reason is not None:
            return _HALTED_KILL
        return _REDUCING_REASON

    def kill(self, reason: str) -> None:
        """Manual halt (kill switch): no entries, flatten at the next input, until resume()."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"kill reason={reason!r}: give a non-empty reason")
        if self._kill_reason is None:
            self._flatten_pending = True
        self._kill_reason = reason
        self._refresh_state()

    def set_reducing(self, on: bool) -> None:
        """REDUCING: exits only (closing signals, stops and take-profits still work)."""
        self._reducing = bool(on)
        self._refresh_state()

    def set_symbol_reducing(self, symbol: str, reason: str) -> None:
        """Exits only on ``symbol`` (e.g. an order there whose outcome is unknown), with the
        reason every refused entry carries; other symbols trade as the state allows."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"symbol reducing reason={reason!r}: give a non-empty reason")
        self._symbol_reducing[symbol] = reason

    def clear_symbol_reducing(self, symbol: str) -> None:
        self._symbol_reducing.pop(symbol, None)

    @property
    def symbols_reducing(self) -> dict[str, str]:
        """Symbols in exits-only mode and why (a copy)."""
        return dict(self._symbol_reducing)

    def resume(self) -> None:
        """Clear the kill switch and REDUCING. A daily-drawdown halt is a rule, not an
        operator state: it stays until the next trading day."""
        self._kill_reason = None
        self._reducing = False
        self._flatten_pending = False
        self._refresh_state()

    def _roll_day(self, now: datetime) -> None:
        if self._halt_until is not None and now >= self._halt_until:
            self._halt_until = None
            self._refresh_state()

    # ------------------------------------------------------------------ decisions

    def decide(
        self, signal: Signal, portfolio: PortfolioSnapshot, market: MarketSnapshot
    ) -> RiskDecision:
        """The decision for one signal at ``market.ts`` (the close of the signal bar).

        Order of checks: day rollover; daily drawdown (a breach halts and flattens everything);
        a pending kill-switch flatten; HOLD signal; confidence gate; an existing position (same
        direction: nothing; opposite: CLOSE, no reversal in the same decision); state; then the
        entry checks (pending order, price band, rate limit, open positions, stop levels,
        size caps, duplicate id).
        """
        symbol = signal.ticker
        if symbol != market.symbol:
            raise ValueError(
                f"Signal.ticker={symbol!r} does not match MarketSnapshot.symbol={market.symbol!r}"
            )
        return self.decide_fields(
            symbol,
            market.ts,
            signal.action,
            signal.confidence,
            market.last_price,
            market.atr,
            market.asset_class,
            portfolio,
            market.reference_price,
        )

    def decide_fields(
        self,
        symbol: str,
        ts: datetime,
        action: SignalAction,
        confidence: float,
        last_price: float,
        atr: float,
        asset_class: AssetClass,
        portfolio: PortfolioSnapshot,
        reference_price: float | None = None,
        ts_ns: int | None = None,
    ) -> RiskDecision:
        """``decide`` on the fields of the Signal and MarketSnapshot, for a caller that checked
        them in bulk already (the backtester validates a million rows at once instead of
        building two validated objects per bar). The same code decides: ``decide`` calls this.
        Unchecked input here is the caller's bug: ``ts`` aware UTC, ``last_price`` finite > 0,
        ``confidence`` in [0, 1], ``ts_ns`` (optional) equal to ``to_ns(ts)``."""
        limits = self._limits
        if self._halt_until is not None and ts >= self._halt_until:
            self._roll_day(ts)
        if self._halt_until is None and drawdown_breached(portfolio, limits):
            return self._start_drawdown_halt(portfolio, ts, asset_class)
        if self._flatten_pending:
            return self._flatten(portfolio, ts, ("flatten:kill_switch",))

        if action is SignalAction.HOLD:
            return RiskDecision(ts, symbol, _HOLD, self._state, (), _SIGNAL_HOLD)
        if confidence < limits.gate:
            # two decimals unless rounding could reach the gate (0.6999 -> "0.6999", not "0.70")
            text = f"{confidence:.2f}" if confidence < limits.gate - 0.005 else repr(confidence)
            return RiskDecision(
                ts,
                symbol,
                _HOLD,
                self._state,
                (),
                (f"{BELOW_GATE}:{text}<{limits.gate_text}",),
            )

        direction = 1 if action is SignalAction.BUY else -1
        position = portfolio.positions.get(symbol)
        if position is not None:
            reasons = same_direction_hold(direction, position.qty)
            if reasons is not None:
                return RiskDecision(ts, symbol, _HOLD, self._state, (), reasons)
            return self._close(position.qty, portfolio, symbol, ts, ts_ns)

        if self._state is not _ACTIVE:
            return RiskDecision(ts, symbol, _HOLD, self._state, (), self._blocked_reasons())
        if self._symbol_reducing and symbol in self._symbol_reducing:
            return self._hold(ts, symbol, f"reducing:symbol:{self._symbol_reducing[symbol]}")
        return self._enter(
            direction, confidence, portfolio, symbol, ts, last_price, atr, reference_price, ts_ns
        )

    def certain_holds(self, is_hold: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """Per signal, vectorized: HOLD_SIGNAL / HOLD_BELOW_GATE when decide() answers HOLD with
        that reason (key ``CERTAIN_HOLD_REASON_KEYS[code]``) whatever the account, else
        NEEDS_DECIDE. Steps 4 and 5 of decide, on the same settings and comparisons.

        Valid only for a decision whose steps 1-3 have nothing to do: right after ``on_mark``
        at the same instant on the same equity and day-open equity, which ran them (a HOLD
        changes no state, so it also holds for later signals of that instant)."""
        codes = np.where(np.asarray(confidence) < self._limits.gate, HOLD_BELOW_GATE, NEEDS_DECIDE)
        codes[np.asarray(is_hold, dtype=bool)] = HOLD_SIGNAL  # checked before the gate
        return codes.astype(np.int8)

    def _hold(self, ts: datetime, symbol: str, reason: str) -> RiskDecision:
        return RiskDecision(ts, symbol, _HOLD, self._state, (), (reason,))

    def _close(
        self,
        qty: float,
        portfolio: PortfolioSnapshot,
        symbol: str,
        ts: datetime,
        ts_ns: int | None = None,
    ) -> RiskDecision:
        for order in portfolio.open_orders:
            if order.symbol == symbol and order.reduce_only:
                return self._hold(ts, symbol, f"pending_order:{order.client_order_id}")
        now_ns = to_ns(ts) if ts_ns is None else ts_ns
        oid = order_id_ns(symbol, now_ns, "C")
        if self._guard.seen(oid):
            return self._hold(ts, symbol, f"duplicate_client_order_id:{oid}")
        side = Side.SELL if qty > 0 else Side.BUY
        order = Order(oid, symbol, side, float(abs(qty)), ts, reduce_only=True)
        self._guard.record(oid, now_ns)
        return RiskDecision(
            ts, symbol, DecisionAction.CLOSE, self._state, (order,), ("close:opposite_signal",)
        )

    def _enter(
        self,
        direction: int,
        confidence: float,
        portfolio: PortfolioSnapshot,
        symbol: str,
        ts: datetime,
        price: float,
        atr: float,
        reference_price: float | None,
        ts_ns: int | None = None,
    ) -> RiskDecision:
        limits = self._limits
        for order in portfolio.open_orders:
            if order.symbol == symbol:
                return self._hold(ts, symbol, f"pending_order:{order.client_order_id}")
        equity = portfolio.equity  # > 0 here: equity <= 0 always breaches the drawdown limit
        problem = price_band_problem(price, reference_price, limits)
        if problem is not None:
            return self._hold(ts, symbol, problem)
        now_ns = to_ns(ts) if ts_ns is None else ts_ns
        problem = rate_limit_problem(self._guard.recent_count(now_ns), limits)
        if problem is not None:
            return self._hold(ts, symbol, problem)
        # no pending order: the positions are the occupied slots (no set to build per bar)
        occupied = occupied_symbols(portfolio) if portfolio.open_orders else portfolio.positions
        problem = open_positions_problem(symbol, occupied, limits)
        if problem is not None:
            return self._hold(ts, symbol, problem)
        levels = stop_levels(direction, price, atr, limits)
        if isinstance(levels, str):
            return self._hold(ts, symbol, levels)
        stop_loss, take_profit, stop_distance = levels
        scale = confidence_scale(confidence, limits)
        qty, caps = entry_quantity(
            equity=equity,
            price=price,
            stop_distance=stop_distance,
            scale=scale,
            gross_now=gross_exposure(portfolio, symbol, price),
            limits=limits,
        )
        if not qty > 0.0:
            return self._hold(ts, symbol, "capped:max_gross_exposure:no_room")
        long = direction > 0
        oid = order_id_ns(symbol, now_ns, "L" if long else "S")
        if self._guard.seen(oid):
            return self._hold(ts, symbol, f"duplicate_client_order_id:{oid}")
        order = Order(
            oid,
            symbol,
            Side.BUY if long else Side.SELL,
            qty,
            ts,
            OrderType.MARKET,
            stop_loss=stop_loss,
            take_profit=take_profit,
        )
        self._guard.record(oid, now_ns)
        reasons = ("entry:long" if long else "entry:short", f"size_scale:{scale:.2f}", *caps)
        action = DecisionAction.OPEN_LONG if long else DecisionAction.OPEN_SHORT
        return RiskDecision(ts, symbol, action, self._state, (order,), reasons)

    def on_mark(
        self, portfolio: PortfolioSnapshot, now: datetime, asset_class: AssetClass
    ) -> RiskDecision | None:
        """Call on every bar close: lifts a drawdown halt at the next trading day, and returns a
        FLATTEN_ALL decision the moment the daily drawdown limit is crossed (or a kill switch
        is pending); otherwise None."""
        require_utc("on_mark", "now", now)
        if self._halt_until is not None and now >= self._halt_until:
            self._roll_day(now)
        if self._halt_until is None and drawdown_breached(portfolio, self._limits):
            return self._start_drawdown_halt(portfolio, now, asset_class)
        if self._flatten_pending:
            return self._flatten(portfolio, now, ("flatten:kill_switch",))
        return None

    def mark_is_due(self, equity: float, day_open_equity: float, now: datetime) -> bool:
        """Whether ``on_mark`` at ``now`` on an account with these values would do anything
        (lift a halt, start one, or flatten for the kill switch). When False, on_mark would
        return None and change nothing, so a caller may skip building its snapshot."""
        halt_until = self._halt_until
        if halt_until is not None:
            return now >= halt_until or self._flatten_pending
        return (
            equity_breaches_drawdown(equity, day_open_equity, self._limits) or self._flatten_pending
        )

    def _start_drawdown_halt(
        self, portfolio: PortfolioSnapshot, ts: datetime, asset_class: AssetClass
    ) -> RiskDecision:
        self._halt_until = next_trading_day_start(ts, asset_class)
        self._refresh_state()
        reason = drawdown_reason(portfolio, self._limits)
        return self._flatten(portfolio, ts, (reason, "halted:daily_drawdown"))

    def _flatten(
        self, portfolio: PortfolioSnapshot, ts: datetime, reasons: tuple[str, ...]
    ) -> RiskDecision:
        """Reduce-only orders closing every position, except those a pending reduce-only order
        already closes (so a repeated flatten never over-closes into a reversal)."""
        self._flatten_pending = False
        pending = {o.symbol for o in portfolio.open_orders if o.reduce_only}
        orders: list[Order] = []
        now_ns = to_ns(ts)
        for symbol in sorted(portfolio.positions):
            if symbol in pending:
                continue
            qty = portfolio.positions[symbol].qty
            oid = order_id_ns(symbol, now_ns, "F")
            if self._guard.seen(oid):
                continue
            side = Side.SELL if qty > 0 else Side.BUY
            orders.append(Order(oid, symbol, side, float(abs(qty)), ts, reduce_only=True))
            self._guard.record(oid, now_ns)
        return RiskDecision(
            ts, PORTFOLIO, DecisionAction.FLATTEN_ALL, self._state, tuple(orders), reasons
        )

    # ------------------------------------------------------------------ outside orders

    def check_order(
        self,
        order: Order,
        market: MarketSnapshot,
        portfolio: PortfolioSnapshot | None = None,
    ) -> RiskDecision:
        """Check an order from outside the engine (e.g. a manual order in the UI).

        Approved: the decision carries the order and the engine remembers its id and time.
        Refused: HOLD with every failing reason. Reduce-only orders pass in every state (they
        must not exceed the position when ``portfolio`` is given); entries need ACTIVE, the
        rate limit, the price band (limit/stop price, else ``market.reference_price``, vs the
        last price), stop-loss and take-profit on the right side, and, with ``portfolio``, the
        notional, gross and open-position caps.
        """
        symbol, ts = market.symbol, market.ts
        if order.symbol != symbol:
            raise ValueError(
                f"Order.symbol={order.symbol!r} does not match MarketSnapshot.symbol={symbol!r}"
            )
        self._roll_day(ts)
        reasons: list[str] = []
        if self._guard.seen(order.client_order_id):
            reasons.append(f"duplicate_client_order_id:{order.client_order_id}")
        if order.reduce_only:
            if portfolio is not None:
                reasons.extend(reduce_only_problems(order, portfolio))
            action = DecisionAction.CLOSE
        else:
            action = (
                DecisionAction.OPEN_LONG if order.side is Side.BUY else DecisionAction.OPEN_SHORT
            )
            reasons.extend(self._entry_order_problems(order, market, portfolio))
        if reasons:
            return RiskDecision(ts, symbol, _HOLD, self._state, (), tuple(reasons))
        self._guard.record(order.client_order_id, to_ns(ts))
        return RiskDecision(ts, symbol, action, self._state, (order,), ("order_checked",))

    def _entry_order_problems(
        self, order: Order, market: MarketSnapshot, portfolio: PortfolioSnapshot | None
    ) -> list[str]:
        limits = self._limits
        problems: list[str] = []
        if self._state is not _ACTIVE:
            problems.extend(self._blocked_reasons())
        if order.symbol in self._symbol_reducing:
            problems.append(f"reducing:symbol:{self._symbol_reducing[order.symbol]}")
        rate_problem = rate_limit_problem(self._guard.recent_count(to_ns(market.ts)), limits)
        if rate_problem is not None:
            problems.append(rate_problem)
        problems.extend(bracket_problems(order, market, limits))
        if portfolio is not None:
            problems.extend(cap_problems(order, market.last_price, portfolio, limits))
        return problems

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        """Everything the engine remembers, JSON-serializable (restart with from_state)."""
        return {
            "version": STATE_VERSION,
            "kill_reason": self._kill_reason,
            "reducing": self._reducing,
            "halt_until": None if self._halt_until is None else self._halt_until.isoformat(),
            "flatten_pending": self._flatten_pending,
            **self._guard.to_state(),
        }

    @classmethod
    def from_state(cls, settings: RiskSettings, state: dict[str, Any]) -> RiskEngine:
        """Rebuild an engine from ``to_state()``; wrong or missing keys raise ValueError."""
        kill_reason, halt_until = parse_state(state)
        engine = cls(settings)
        engine._kill_reason = kill_reason
        engine._reducing = state["reducing"]
        engine._flatten_pending = state["flatten_pending"]
        engine._halt_until = halt_until
        engine._guard = OrderGuard.from_state(settings.max_orders_per_minute, state)
        engine._refresh_state()
        return engine
