"""Invariants of the risk engine, each checked on 1,000 generated scenarios.

A scenario is random settings, an engine brought into a random state (ACTIVE with earlier
orders, REDUCING, killed, killed and flattened, halted by drawdown), a random portfolio
(positions, pending orders, marks, equity around the day's open) and a random signal/market.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from app.config import RiskSettings
from app.risk.engine import MarketSnapshot, PortfolioSnapshot, RiskEngine
from app.types import (
    AssetClass,
    DecisionAction,
    Order,
    Position,
    RiskDecision,
    RiskState,
    Side,
    Signal,
    SignalAction,
)
from tests.unit.risk.risk_helpers import NOON

SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")
MODES = ("active", "reducing", "killed", "killed_flattened", "dd_halted")
REL = 1e-9  # float rounding allowance on cap comparisons
EXAMPLES = settings(max_examples=1000, deadline=None)
ENTRY_ACTIONS = (DecisionAction.OPEN_LONG, DecisionAction.OPEN_SHORT)


@dataclass(frozen=True)
class Scenario:
    settings: RiskSettings
    mode: str
    history: int  # earlier entries (other symbols) inside the last minute
    portfolio: PortfolioSnapshot
    market: MarketSnapshot
    signal: Signal

    def engine(self) -> RiskEngine:
        """A fresh engine brought into the scenario's state (deterministically)."""
        e = RiskEngine(self.settings)
        ts, ac = self.market.ts, self.market.asset_class
        flat = PortfolioSnapshot(1e6, 1e6, {})
        for i in range(self.history):
            t = ts - timedelta(seconds=5 * (i + 1))
            sym = f"H{i}"
            sig = Signal(sym, t, SignalAction.BUY, 1.0)
            e.decide(sig, flat, MarketSnapshot(sym, t, 100.0, 1.0, ac))
        if self.mode == "reducing":
            e.set_reducing(True)
        elif self.mode in ("killed", "killed_flattened"):
            e.kill("property test")
            if self.mode == "killed_flattened":
                e.on_mark(flat, ts - timedelta(seconds=1), ac)
        elif self.mode == "dd_halted":
            e.on_mark(PortfolioSnapshot(50.0, 100.0, {}), ts - timedelta(minutes=1), ac)
        return e


def random_settings(rng: random.Random) -> RiskSettings:
    return RiskSettings(
        confidence_gate=rng.uniform(0.5, 0.95),
        max_daily_drawdown=rng.uniform(0.005, 0.1),
        stop_mode=rng.choice(["atr", "pct"]),
        stop_loss_atr=rng.uniform(0.5, 3.0),
        take_profit_atr=rng.uniform(0.5, 6.0),
        stop_loss_pct=rng.uniform(0.001, 0.2),
        take_profit_pct=rng.uniform(0.001, 1.5),
        risk_per_trade=rng.uniform(0.001, 0.05),
        size_floor=rng.choice([0.0, 1.0, rng.random()]),
        max_position_notional=rng.uniform(0.01, 2.0),
        max_gross_exposure=rng.uniform(0.05, 3.0),
        max_open_positions=rng.randint(1, 6),
        max_orders_per_minute=rng.randint(1, 6),
        price_band=rng.uniform(0.001, 0.2),
    )


# Settings are built once (pydantic validation is the slow part); the defaults are one of them.
SETTINGS_POOL = (RiskSettings(), *(random_settings(random.Random(i)) for i in range(31)))


def random_book(rng: random.Random, symbol: str, price: float, ts: datetime) -> PortfolioSnapshot:
    """Positions, pending entries and closes, marks, and equity around the day's open.

    Sizes are fractions of equity, so the caps bind in some scenarios and not in others."""
    equity = rng.choice([1e3, 1e7, 10 ** rng.uniform(3, 7)])
    day_open = equity / rng.choice([1.0, 1.0, rng.uniform(0.85, 1.1)])
    marks = {sym: rng.uniform(1.0, 1e3) for sym in SYMBOLS if sym != symbol}
    all_marks = {**marks, symbol: price}
    positions = {}
    for sym in rng.sample(SYMBOLS, rng.choice([0, 0, 1, 2, 3, 5])):
        qty = equity * rng.uniform(0.001, 0.4) / all_marks[sym] * rng.choice([1.0, -1.0])
        positions[sym] = Position(sym, qty, rng.uniform(1.0, 1e3), ts - timedelta(hours=1))
    orders: list[Order] = []
    for i, sym in enumerate(rng.sample(SYMBOLS, rng.choice([0, 0, 1, 3]))):
        if sym in positions and rng.random() < 0.5:
            pos = positions[sym]
            side = Side.SELL if pos.qty > 0 else Side.BUY
            orders.append(Order(f"o{i}", sym, side, abs(pos.qty), ts, reduce_only=True))
        else:
            p = all_marks[sym]
            qty = equity * rng.uniform(0.001, 0.4) / p
            orders.append(
                Order(f"o{i}", sym, Side.BUY, qty, ts, stop_loss=0.9 * p, take_profit=1.1 * p)
            )
    return PortfolioSnapshot(equity, day_open, positions, tuple(orders), marks)


def place_confidence(u: float, gate: float, where: str) -> float:
    """Map ``u`` in [0, 1] below the gate, at/above it, or anywhere (u = 0 and 1 hit the edges)."""
    if where == "below":
        conf = gate * u
        return conf if conf < gate else math.nextafter(gate, 0.0)
    if where == "above":
        return min(1.0, gate + (1.0 - gate) * u)
    return u


# Strategies built once: building them per example costs more than the example itself.
UNIT = st.floats(0.0, 1.0)
SEEDS = st.integers(0, 2**32)
ACTIONS = st.sampled_from(list(SignalAction))
SETTINGS = st.sampled_from(SETTINGS_POOL)


def scenarios(confidence: str = "any", modes: tuple[str, ...] = MODES) -> st.SearchStrategy:
    """Hypothesis draws the few values the invariants turn on (settings, state, confidence,
    action); a seeded RNG fills in the book and the market, which keeps 1,000 examples per
    invariant fast. A failing example prints the whole Scenario, so it is reproducible."""
    return st.builds(
        lambda s, mode, action, u, seed: build_scenario(
            s, mode, action, place_confidence(u, s.confidence_gate, confidence), seed
        ),
        SETTINGS,
        st.sampled_from(modes),
        ACTIONS,
        UNIT,
        SEEDS,
    )


def build_scenario(
    s: RiskSettings, mode: str, action: SignalAction, conf: float, seed: int
) -> Scenario:
    rng = random.Random(seed)
    ts = NOON + timedelta(seconds=rng.randint(0, 3000))  # the same trading day everywhere
    symbol = rng.choice(SYMBOLS)
    price = rng.choice([0.01, 1e5, 10 ** rng.uniform(-2, 5)])
    atr = rng.choice([math.nan, 0.0, price * 1e-12, *[price * rng.uniform(1e-4, 0.05)] * 5])
    reference = rng.choice([None, price * (1 + rng.uniform(-0.1, 0.1))])
    market = MarketSnapshot(symbol, ts, price, atr, rng.choice(list(AssetClass)), reference)
    portfolio = random_book(rng, symbol, price, ts)
    signal = Signal(symbol, ts - timedelta(minutes=5), action, conf)
    history = rng.choice([0, 0, 0, rng.randint(1, 6)]) if mode == "active" else 0
    return Scenario(s, mode, history, portfolio, market, signal)


def test_generated_scenarios_do_exercise_entries() -> None:
    """Guard against vacuous properties: ACTIVE scenarios above the gate do produce entries."""
    outcomes = []
    for seed in range(300):
        sc = build_scenario(
            SETTINGS_POOL[seed % len(SETTINGS_POOL)], "active", SignalAction.BUY, 0.97, seed
        )
        outcomes.append(sc.engine().decide(sc.signal, sc.portfolio, sc.market).action)
    assert outcomes.count(DecisionAction.OPEN_LONG) >= 40
    assert outcomes.count(DecisionAction.CLOSE) >= 10
    assert outcomes.count(DecisionAction.FLATTEN_ALL) >= 10


def entries(d: RiskDecision) -> list[Order]:
    return [o for o in d.orders if not o.reduce_only]


def assert_no_entry(d: RiskDecision) -> None:
    assert d.action not in ENTRY_ACTIONS
    assert not entries(d)


# ------------------------------------------------------------------ invariants


@EXAMPLES
@given(scenarios(confidence="below"))
def test_no_entry_below_the_gate(sc: Scenario) -> None:
    assert_no_entry(sc.engine().decide(sc.signal, sc.portfolio, sc.market))


@EXAMPLES
@given(scenarios(confidence="above", modes=("reducing", "killed", "killed_flattened", "dd_halted")))
def test_no_entry_while_halted_or_reducing(sc: Scenario) -> None:
    e = sc.engine()
    assert e.state in (RiskState.HALTED, RiskState.REDUCING)
    d = e.decide(sc.signal, sc.portfolio, sc.market)
    assert_no_entry(d)
    assert all(o.reduce_only for o in d.orders)


@EXAMPLES
@given(scenarios())
def test_a_hold_signal_never_trades_on_its_own(sc: Scenario) -> None:
    """HOLD closes nothing and opens nothing; only a due FLATTEN_ALL may carry orders."""
    hold = Signal(sc.signal.ticker, sc.signal.ts, SignalAction.HOLD, sc.signal.confidence)
    d = sc.engine().decide(hold, sc.portfolio, sc.market)
    assert d.action in (DecisionAction.HOLD, DecisionAction.FLATTEN_ALL)
    if d.action is DecisionAction.HOLD:
        assert not d.orders and d.reasons == ("signal_hold",)


@EXAMPLES
@given(scenarios(confidence="above", modes=("active",)))
def test_entry_only_when_every_rule_allows_it(sc: Scenario) -> None:
    """An entry implies ACTIVE, no drawdown breach, no position or pending order in the symbol."""
    d = sc.engine().decide(sc.signal, sc.portfolio, sc.market)
    if entries(d):
        p = sc.portfolio
        assert d.state is RiskState.ACTIVE
        assert p.equity >= p.day_open_equity * (1 - sc.settings.max_daily_drawdown)
        assert sc.market.symbol not in p.positions
        assert all(o.symbol != sc.market.symbol for o in p.open_orders)
        assert sc.signal.action is not SignalAction.HOLD


@EXAMPLES
@given(scenarios(confidence="above", modes=("active",)))
def test_every_entry_has_stops_on_the_right_side(sc: Scenario) -> None:
    d = sc.engine().decide(sc.signal, sc.portfolio, sc.market)
    price = sc.market.last_price
    for order in entries(d):
        assert order.stop_loss is not None and order.take_profit is not None
        if order.side is Side.BUY:
            assert d.action is DecisionAction.OPEN_LONG
            assert order.stop_loss < price < order.take_profit
        else:
            assert d.action is DecisionAction.OPEN_SHORT
            assert order.take_profit < price < order.stop_loss


@EXAMPLES
@given(scenarios(confidence="above", modes=("active",)))
def test_no_size_above_any_cap(sc: Scenario) -> None:
    d = sc.engine().decide(sc.signal, sc.portfolio, sc.market)
    p, s, price = sc.portfolio, sc.settings, sc.market.last_price
    marks = {**(p.prices or {}), sc.market.symbol: price}
    gross_before = sum(abs(pos.qty) * marks[sym] for sym, pos in p.positions.items())
    gross_before += sum(o.qty * marks[o.symbol] for o in p.open_orders if not o.reduce_only)
    occupied = set(p.positions) | {o.symbol for o in p.open_orders if not o.reduce_only}
    for order in entries(d):
        notional = order.qty * price
        assert order.qty > 0
        assert notional <= s.max_position_notional * p.equity * (1 + REL)
        assert gross_before + notional <= s.max_gross_exposure * p.equity * (1 + REL)
        assert len(occupied) < s.max_open_positions


@EXAMPLES
@given(scenarios())
def test_same_inputs_same_decision_also_after_restore(sc: Scenario) -> None:
    first, second = sc.engine(), sc.engine()
    restored = RiskEngine.from_state(sc.settings, json.loads(json.dumps(first.to_state())))
    decisions = [e.decide(sc.signal, sc.portfolio, sc.market) for e in (first, second, restored)]
    assert decisions[0] == decisions[1] == decisions[2]
    assert first.to_state() == second.to_state() == restored.to_state()
    assert first.state is restored.state


@EXAMPLES
@given(scenarios(modes=("active", "killed", "reducing")), st.sampled_from(["drawdown", "kill"]))
def test_flatten_all_closes_every_position_exactly(sc: Scenario, trigger: str) -> None:
    e = sc.engine()
    p = sc.portfolio
    if trigger == "kill":
        e.kill("property test")
        portfolio = p
    else:  # the same book, marked below the drawdown limit
        breached = p.day_open_equity * (1 - sc.settings.max_daily_drawdown) * 0.999
        portfolio = PortfolioSnapshot(breached, p.day_open_equity, p.positions, p.open_orders)
    d = e.on_mark(portfolio, sc.market.ts, sc.market.asset_class)
    assert d is not None and d.action is DecisionAction.FLATTEN_ALL
    assert e.state is RiskState.HALTED
    pending_close = {o.symbol for o in p.open_orders if o.reduce_only}
    expected = {sym: pos for sym, pos in p.positions.items() if sym not in pending_close}
    assert sorted(o.symbol for o in d.orders) == sorted(expected)  # one order per position
    for order in d.orders:
        pos = expected[order.symbol]
        assert order.reduce_only
        assert order.qty == abs(pos.qty)
        assert order.side is (Side.SELL if pos.qty > 0 else Side.BUY)
        assert order.stop_loss is None and order.take_profit is None
    assert e.on_mark(portfolio, sc.market.ts, sc.market.asset_class) is None  # only once


# ------------------------------------------------------------------ a stream of decisions


@st.composite
def streams(draw: st.DrawFn) -> tuple[RiskSettings, list[tuple[datetime, str, SignalAction]]]:
    """Up to 25 signals over a few minutes (seeded), against a limit of 1 to 4 orders/minute."""
    s = RiskSettings(max_orders_per_minute=draw(st.integers(1, 4)), max_open_positions=6)
    rng = random.Random(draw(st.integers(0, 2**32)))
    steps, t = [], NOON
    for _ in range(rng.randint(1, 25)):
        t += timedelta(seconds=rng.choice([0, 1, 30, 59, 60, rng.randint(0, 40)]))
        steps.append((t, rng.choice(SYMBOLS), rng.choice(list(SignalAction))))
    return s, steps


@EXAMPLES
@given(streams())
def test_rate_limit_and_unique_ids_over_a_stream(stream: tuple) -> None:
    """Entries in any rolling minute never exceed the limit; no client order id repeats."""
    s, steps = stream
    e = RiskEngine(s)
    flat = PortfolioSnapshot(1e6, 1e6, {})
    entry_times: list[datetime] = []
    ids: list[str] = []
    for t, sym, action in steps:
        d = e.decide(
            Signal(sym, t, action, 0.9), flat, MarketSnapshot(sym, t, 100.0, 1.0, AssetClass.CRYPTO)
        )
        for order in d.orders:
            ids.append(order.client_order_id)
            entry_times.append(t)
    assert len(ids) == len(set(ids))
    for t in entry_times:
        in_window = [u for u in entry_times if t - timedelta(seconds=60) < u <= t]
        assert len(in_window) <= s.max_orders_per_minute
