"""One test (or a few) per risk rule, with the exact reason strings docs/RISK.md lists."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from app.risk.engine import PORTFOLIO, MarketSnapshot, PortfolioSnapshot
from app.types import (
    AssetClass,
    DecisionAction,
    InvalidField,
    Order,
    OrderType,
    RiskState,
    Side,
    SignalAction,
)
from tests.unit.risk.risk_helpers import (
    NOON,
    engine,
    entry_order,
    market,
    portfolio,
    position,
    signal,
)

BUY, SELL, HOLD = SignalAction.BUY, SignalAction.SELL, SignalAction.HOLD


# ------------------------------------------------------------------ confidence gate, HOLD


def test_below_gate_holds_with_reason() -> None:
    d = engine().decide(signal(confidence=0.62), portfolio(), market())
    assert d.action is DecisionAction.HOLD and not d.orders
    assert d.reasons == ("confidence_below_gate:0.62<0.70",)


def test_just_below_gate_is_not_rounded_up_to_the_gate() -> None:
    d = engine().decide(signal(confidence=0.6999), portfolio(), market())
    assert d.reasons == ("confidence_below_gate:0.6999<0.70",)


def test_a_naive_mark_time_is_refused() -> None:
    with pytest.raises(InvalidField, match="on_mark.now"):
        engine().on_mark(portfolio(), datetime(2025, 1, 1), AssetClass.CRYPTO)  # noqa: DTZ001


def test_at_gate_enters_with_floor_size() -> None:
    d = engine().decide(signal(confidence=0.70), portfolio(), market())
    assert d.action is DecisionAction.OPEN_LONG
    assert d.reasons == ("entry:long", "size_scale:0.25")


def test_hold_signal_never_closes_a_position() -> None:
    d = engine().decide(
        signal(action=HOLD, confidence=0.99), portfolio(positions=[position()]), market()
    )
    assert d.action is DecisionAction.HOLD and d.reasons == ("signal_hold",)


def test_signal_and_market_symbols_must_match() -> None:
    with pytest.raises(ValueError, match="ETHUSDT"):
        engine().decide(signal(ticker="ETHUSDT"), portfolio(), market())


# ------------------------------------------------------------------ stops and take-profits


def test_atr_stops_long_and_short() -> None:
    e = engine()
    long = e.decide(signal(action=BUY), portfolio(), market(price=100.0, atr=2.0)).orders[0]
    assert (long.side, long.stop_loss, long.take_profit) == (Side.BUY, 97.0, 106.0)
    assert long.type is OrderType.MARKET and not long.reduce_only
    short_market = market(symbol="ETHUSDT", price=100.0, atr=2.0)
    short = e.decide(signal("ETHUSDT", SELL), portfolio(), short_market).orders[0]
    assert (short.side, short.stop_loss, short.take_profit) == (Side.SELL, 103.0, 94.0)


def test_pct_stops_work_without_atr() -> None:
    e = engine(stop_mode="pct", stop_loss_pct=0.01, take_profit_pct=0.03)
    order = e.decide(signal(), portfolio(), market(price=200.0, atr=math.nan)).orders[0]
    assert order.stop_loss == pytest.approx(198.0) and order.take_profit == pytest.approx(206.0)


@pytest.mark.parametrize("atr", [math.nan, 0.0, -1.0, math.inf])
def test_missing_atr_refuses_entry(atr: float) -> None:
    d = engine().decide(signal(), portfolio(), market(atr=atr))
    assert d.action is DecisionAction.HOLD and d.reasons == ("no_atr:stop_mode=atr",)


def test_stop_below_zero_is_refused() -> None:
    d = engine().decide(signal(), portfolio(), market(price=1.0, atr=1.0))
    assert d.reasons == ("stop_loss_nonpositive",)


# ------------------------------------------------------------------ sizing and caps


def test_size_is_risk_budget_over_stop_distance_scaled_by_confidence() -> None:
    # 0.5% of 100k = 500 risked; stop 1.5 ATR = 1.5; scale at 0.85 = 0.25 + 0.75 * 0.5 = 0.625
    e = engine(max_position_notional=10.0, max_gross_exposure=10.0)
    d = e.decide(signal(confidence=0.85), portfolio(), market(price=100.0, atr=1.0))
    assert d.orders[0].qty == pytest.approx(500 * 0.625 / 1.5)
    assert d.reasons == ("entry:long", "size_scale:0.62")
    full = e.decide(signal("ETHUSDT", confidence=1.0), portfolio(), market("ETHUSDT"))
    assert full.orders[0].qty == pytest.approx(500 / 1.5)


def test_notional_cap() -> None:
    d = engine(max_position_notional=0.05).decide(signal(), portfolio(), market(atr=0.1))
    assert d.orders[0].qty * 100.0 == pytest.approx(5_000.0)
    assert "capped:max_position_notional" in d.reasons


def test_gross_cap_counts_existing_positions_and_pending_entries() -> None:
    held = [position("AAPL", qty=300.0, avg_price=100.0)]  # 30k, marked at 110 -> 33k
    pending = (entry_order("EURUSD", qty=200.0, client_order_id="p1"),)  # marked at 100 -> 20k
    p = portfolio(positions=held, open_orders=pending, prices={"AAPL": 110.0, "EURUSD": 100.0})
    e = engine(max_gross_exposure=0.6, max_position_notional=1.0)
    d = e.decide(signal(), p, market(atr=0.1))
    assert d.orders[0].qty * 100.0 == pytest.approx(60_000 - 33_000 - 20_000)
    assert d.reasons[-1] == "capped:max_gross_exposure"


def test_no_gross_room_refuses() -> None:
    p = portfolio(positions=[position("AAPL", qty=1000.0, avg_price=100.0)])
    d = engine().decide(signal(), p, market())
    assert d.reasons == ("capped:max_gross_exposure:no_room",)


def test_max_open_positions_counts_positions_and_pending_entries() -> None:
    p = portfolio(
        positions=[position("AAPL", qty=1.0)],
        open_orders=(entry_order("EURUSD", client_order_id="p1"),),
    )
    d = engine(max_open_positions=2).decide(signal(), p, market())
    assert d.reasons == ("capped:max_open_positions:2>=2",)


def test_no_equity_is_always_a_drawdown_breach() -> None:
    e = engine(max_daily_drawdown=0.99)
    d = e.decide(signal(), portfolio(equity=0.0, day_open_equity=1.0), market())
    assert d.action is DecisionAction.FLATTEN_ALL
    assert d.reasons == ("daily_drawdown:100.00%>99.00%", "halted:daily_drawdown")
    assert e.decide(signal(), portfolio(equity=0.0, day_open_equity=1.0), market()).reasons == (
        "halted:daily_drawdown",
    )


# ------------------------------------------------------------------ existing positions


def test_same_direction_does_nothing() -> None:
    e = engine()
    assert e.decide(signal(), portfolio(positions=[position(qty=5)]), market()).reasons == (
        "already_long",
    )
    d = e.decide(signal(action=SELL), portfolio(positions=[position(qty=-5)]), market())
    assert d.reasons == ("already_short",) and d.action is DecisionAction.HOLD


def test_opposite_signal_closes_without_reversing() -> None:
    d = engine().decide(signal(action=SELL), portfolio(positions=[position(qty=7.5)]), market())
    assert d.action is DecisionAction.CLOSE and d.reasons == ("close:opposite_signal",)
    (order,) = d.orders
    assert (order.side, order.qty, order.reduce_only) == (Side.SELL, 7.5, True)
    assert order.stop_loss is None and order.take_profit is None


def test_opposite_signal_below_gate_does_not_close() -> None:
    d = engine().decide(
        signal(action=SELL, confidence=0.5), portfolio(positions=[position()]), market()
    )
    assert d.action is DecisionAction.HOLD


def test_pending_close_is_not_doubled() -> None:
    pending = (Order("c0", "BTCUSDT", Side.SELL, 10.0, NOON, reduce_only=True),)
    p = portfolio(positions=[position()], open_orders=pending)
    assert engine().decide(signal(action=SELL), p, market()).reasons == ("pending_order:c0",)


def test_pending_entry_blocks_a_second_entry() -> None:
    p = portfolio(open_orders=(entry_order("BTCUSDT", client_order_id="e0"),))
    assert engine().decide(signal(), p, market()).reasons == ("pending_order:e0",)


# ------------------------------------------------------------------ order-flow guards


def test_rate_limit_by_input_clock() -> None:
    e = engine(max_orders_per_minute=2)
    t = NOON
    for i, sym in enumerate(("A", "B")):
        ts = t + timedelta(seconds=10 * i)
        assert e.decide(signal(sym, ts=ts), portfolio(), market(sym, ts=ts)).approved
    ts = t + timedelta(seconds=59)
    d = e.decide(signal("C", ts=ts), portfolio(), market("C", ts=ts))
    assert d.reasons == ("rate_limited:2>=2/min",)
    ts = t + timedelta(seconds=60)  # the first order left the rolling minute
    assert e.decide(signal("C", ts=ts), portfolio(), market("C", ts=ts)).approved


def test_closes_are_never_rate_limited() -> None:
    e = engine(max_orders_per_minute=1)
    assert e.decide(signal("A"), portfolio(), market("A")).approved
    d = e.decide(signal(action=SELL), portfolio(positions=[position()]), market())
    assert d.action is DecisionAction.CLOSE


def test_price_band() -> None:
    d = engine().decide(signal(), portfolio(), market(price=106.0, reference_price=100.0))
    assert d.reasons == ("price_band:6.00%>5.00%",)
    inside = engine().decide(signal(), portfolio(), market(price=104.0, reference_price=100.0))
    assert inside.approved


def test_duplicate_client_order_id_is_refused() -> None:
    e = engine()
    first = e.decide(signal(), portfolio(), market())
    again = e.decide(signal(), portfolio(), market())
    assert first.orders[0].client_order_id == "BTCUSDT-1736164800000-L"
    assert again.reasons == ("duplicate_client_order_id:BTCUSDT-1736164800000-L",)


# ------------------------------------------------------------------ daily drawdown


def test_drawdown_exactly_at_limit_does_not_halt() -> None:
    e = engine()
    assert e.on_mark(portfolio(98_000.0, 100_000.0), NOON, AssetClass.CRYPTO) is None
    assert e.state is RiskState.ACTIVE


def test_drawdown_breach_flattens_everything_and_halts() -> None:
    e = engine()
    held = [position("BTCUSDT", 2.0), position("ETHUSDT", -3.0)]
    d = e.on_mark(portfolio(97_900.0, 100_000.0, held), NOON, AssetClass.CRYPTO)
    assert d is not None and d.action is DecisionAction.FLATTEN_ALL and d.symbol == PORTFOLIO
    assert d.reasons == ("daily_drawdown:2.10%>2.00%", "halted:daily_drawdown")
    assert [(o.symbol, o.side, o.qty, o.reduce_only) for o in d.orders] == [
        ("BTCUSDT", Side.SELL, 2.0, True),
        ("ETHUSDT", Side.BUY, 3.0, True),
    ]
    assert e.state is RiskState.HALTED and d.state is RiskState.HALTED
    # flattened once: the next mark of the same day is quiet, even after equity recovers
    later = NOON + timedelta(hours=1)
    assert e.on_mark(portfolio(101_000.0, 100_000.0), later, AssetClass.CRYPTO) is None
    refused = e.decide(signal(ts=later), portfolio(101_000.0, 100_000.0), market(ts=later))
    assert refused.reasons == ("halted:daily_drawdown",) and not refused.orders


def test_drawdown_breach_inside_decide_flattens_too() -> None:
    e = engine()
    d = e.decide(signal(), portfolio(90_000.0, 100_000.0, [position()]), market())
    assert d.action is DecisionAction.FLATTEN_ALL and len(d.orders) == 1
    assert e.state is RiskState.HALTED


@pytest.mark.parametrize(
    ("asset_class", "last_halted", "first_active"),
    [
        (
            AssetClass.CRYPTO,
            datetime(2025, 1, 6, 23, 55, tzinfo=UTC),
            datetime(2025, 1, 7, tzinfo=UTC),
        ),
        (
            AssetClass.STOCKS,
            datetime(2025, 1, 7, 4, 55, tzinfo=UTC),
            datetime(2025, 1, 7, 5, tzinfo=UTC),
        ),
        (
            AssetClass.FOREX,
            datetime(2025, 1, 6, 21, 55, tzinfo=UTC),
            datetime(2025, 1, 6, 22, tzinfo=UTC),
        ),
    ],
)
def test_drawdown_halt_lifts_at_the_next_trading_day(
    asset_class: AssetClass, last_halted: datetime, first_active: datetime
) -> None:
    e = engine()
    assert e.on_mark(portfolio(97_000.0, 100_000.0), NOON, asset_class) is not None
    assert e.halt_until == first_active
    fresh_day = portfolio(97_000.0)  # the caller resets the day's opening equity
    assert e.on_mark(fresh_day, last_halted, asset_class) is None
    assert e.state is RiskState.HALTED
    assert e.on_mark(fresh_day, first_active, asset_class) is None
    assert e.state is RiskState.ACTIVE
    m = market(ts=first_active, asset_class=asset_class)
    assert e.decide(signal(ts=first_active), fresh_day, m).action is DecisionAction.OPEN_LONG


# ------------------------------------------------------------------ kill switch, REDUCING


def test_kill_switch_flattens_once_and_holds_until_resume() -> None:
    e = engine()
    e.kill("operator: news shock")
    assert e.state is RiskState.HALTED
    d = e.on_mark(portfolio(positions=[position()]), NOON, AssetClass.CRYPTO)
    assert d is not None and d.reasons == ("flatten:kill_switch",) and len(d.orders) == 1
    assert e.on_mark(portfolio(positions=[position()]), NOON, AssetClass.CRYPTO) is None
    next_week = NOON + timedelta(days=7)
    refused = e.decide(signal(ts=next_week), portfolio(), market(ts=next_week))
    assert refused.reasons == ("halted:kill_switch",)
    e.resume()
    assert e.state is RiskState.ACTIVE
    assert e.decide(signal(ts=next_week), portfolio(), market(ts=next_week)).approved


def test_kill_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        engine().kill("  ")


def test_resume_does_not_lift_a_drawdown_halt() -> None:
    e = engine()
    e.on_mark(portfolio(90_000.0, 100_000.0), NOON, AssetClass.CRYPTO)
    e.resume()
    assert e.state is RiskState.HALTED


def test_reducing_allows_exits_only() -> None:
    e = engine()
    e.set_reducing(True)
    assert e.state is RiskState.REDUCING
    assert e.decide(signal(), portfolio(), market()).reasons == ("reducing:exits_only",)
    close = e.decide(signal(action=SELL), portfolio(positions=[position()]), market())
    assert close.action is DecisionAction.CLOSE and close.state is RiskState.REDUCING
    e.set_reducing(False)
    assert e.decide(signal("ETHUSDT"), portfolio(), market("ETHUSDT")).approved


# ------------------------------------------------------------------ check_order (outside orders)


def test_manual_entry_order_is_checked_and_remembered() -> None:
    e = engine()
    m = market("ETHUSDT")
    ok = e.check_order(entry_order(), m, portfolio())
    assert (
        ok.approved and ok.action is DecisionAction.OPEN_LONG and ok.reasons == ("order_checked",)
    )
    assert e.check_order(entry_order(), m).reasons == ("duplicate_client_order_id:manual-1",)


def test_manual_order_problems_are_all_listed() -> None:
    e = engine()
    e.set_reducing(True)
    bad = entry_order(client_order_id="m2", stop_loss=101.0, take_profit=99.0)
    d = e.check_order(bad, market("ETHUSDT"))
    assert d.action is DecisionAction.HOLD
    assert d.reasons == (
        "reducing:exits_only",
        "stop_loss_wrong_side:101vs100",
        "take_profit_wrong_side:99vs100",
    )


def test_manual_limit_order_outside_band_and_caps() -> None:
    limit = Order(
        "m3",
        "ETHUSDT",
        Side.BUY,
        1_000.0,
        NOON,
        OrderType.LIMIT,
        limit_price=90.0,
        stop_loss=85.0,
        take_profit=95.0,
    )
    d = engine().check_order(limit, market("ETHUSDT"), portfolio())
    assert d.reasons == (
        "price_band:11.11%>5.00%",
        "capped:max_position_notional",
    )


def test_manual_reduce_only_passes_when_halted_but_not_beyond_the_position() -> None:
    e = engine()
    e.kill("test")
    p = portfolio(positions=[position("ETHUSDT", qty=5.0)])
    ok = Order("r1", "ETHUSDT", Side.SELL, 5.0, NOON, reduce_only=True)
    assert e.check_order(ok, market("ETHUSDT"), p).action is DecisionAction.CLOSE
    too_big = Order("r2", "ETHUSDT", Side.SELL, 6.0, NOON, reduce_only=True)
    assert e.check_order(too_big, market("ETHUSDT"), p).reasons == (
        "reduce_only:qty_exceeds_position:6>5",
    )
    wrong_way = Order("r3", "ETHUSDT", Side.BUY, 1.0, NOON, reduce_only=True)
    assert e.check_order(wrong_way, market("ETHUSDT"), p).reasons == (
        "reduce_only:no_position_to_reduce",
    )


# ------------------------------------------------------------------ input validation


def test_snapshots_name_the_bad_field() -> None:
    with pytest.raises(InvalidField, match="last_price"):
        MarketSnapshot("BTCUSDT", NOON, 0.0, 1.0, AssetClass.CRYPTO)
    with pytest.raises(InvalidField, match="naive"):
        MarketSnapshot("BTCUSDT", datetime(2025, 1, 1), 1.0, 1.0, AssetClass.CRYPTO)  # noqa: DTZ001
    with pytest.raises(InvalidField, match="day_open_equity"):
        PortfolioSnapshot(1.0, 0.0, {})
    with pytest.raises(InvalidField, match="equity"):
        PortfolioSnapshot(math.nan, 1.0, {})
