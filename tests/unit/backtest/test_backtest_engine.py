"""The event-driven engine on scripted bars: timing, intrabar exits, costs, halts, shared cash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bt_scenarios import WARMUP, calm_bars, config, set_bar, signals

from app.backtest.engine import BacktestConfig, run_backtest
from app.risk.engine import RiskEngine
from app.types import AssetClass

CRYPTO = {"BTCUSDT": AssetClass.CRYPTO, "ETHUSDT": AssetClass.CRYPTO}
SLIP = 0.0002
FEE = 0.001
# Calm bars: ATR = 0.2, so an entry at a close of 100 gets SL 99.7 and TP 100.6 (1.5 / 3 ATR);
# the 25% notional cap sizes it at 250 units.
QTY = 250.0


def long_at(bars: pd.DataFrame, i: int = WARMUP, conf: float = 0.9, word: str = "BUY"):
    return signals([(bars, i, "BTCUSDT", word, conf)])


def test_signal_fills_at_the_next_bar_open_never_at_the_signal_close():
    bars = calm_bars(40)
    set_bar(bars, WARMUP, 100.0, 100.1, 99.9, 100.0)  # signal bar closes at 100
    set_bar(bars, WARMUP + 1, 100.05, 100.15, 99.95, 100.1)  # next bar opens at 100.05
    res = run_backtest({"BTCUSDT": bars}, long_at(bars), CRYPTO, config())
    entry = res.fills.iloc[0]
    assert entry["ts"] == bars["ts"].iloc[WARMUP + 1]
    assert entry["ref_price"] == 100.05
    assert entry["price"] == pytest.approx(100.05 * (1 + SLIP))
    assert entry["qty"] == pytest.approx(QTY)
    assert entry["fee"] == pytest.approx(QTY * 100.05 * (1 + SLIP) * FEE)
    # equity at the signal bar's close is untouched; the position shows from the next bar on
    eq = res.equity.set_index("ts")["equity"]
    assert eq.iloc[WARMUP] == 100_000.0
    assert eq.iloc[WARMUP + 1] == pytest.approx(
        100_000.0 - QTY * (100.05 * (1 + SLIP) - 100.1) - entry["fee"]
    )


def test_stop_is_assumed_first_when_one_bar_touches_both_levels():
    bars = calm_bars(40)
    set_bar(bars, WARMUP + 2, 100.0, 100.8, 99.5, 100.0)  # above TP 100.6 and below SL 99.7
    res = run_backtest({"BTCUSDT": bars}, long_at(bars), CRYPTO, config())
    exit_ = res.fills.iloc[1]
    assert exit_["reason"] == "stop_loss"
    assert exit_["ts"] == bars["ts"].iloc[WARMUP + 2]
    assert exit_["ref_price"] == pytest.approx(99.7)
    assert exit_["price"] == pytest.approx(99.7 * (1 - SLIP))  # a triggered stop pays slippage
    trade = res.trades.iloc[0]
    assert (trade["side"], trade["exit_reason"]) == ("LONG", "stop_loss")


def test_gap_through_the_stop_fills_at_the_open():
    bars = calm_bars(40)
    set_bar(bars, WARMUP + 2, 98.0, 98.2, 97.5, 98.0)  # opens far below SL 99.7
    res = run_backtest({"BTCUSDT": bars}, long_at(bars), CRYPTO, config())
    exit_ = res.fills.iloc[1]
    assert (exit_["reason"], exit_["ref_price"]) == ("stop_loss", 98.0)
    assert exit_["price"] == pytest.approx(98.0 * (1 - SLIP))


def test_take_profit_fills_at_its_level_without_slippage_and_short_side_mirrors():
    bars = calm_bars(40)
    set_bar(bars, WARMUP + 2, 100.0, 100.1, 99.3, 99.4)  # short TP = 100 - 0.6 = 99.4
    res = run_backtest({"BTCUSDT": bars}, long_at(bars, word="SELL"), CRYPTO, config())
    entry, exit_ = res.fills.iloc[0], res.fills.iloc[1]
    assert entry["side"] == -1 and entry["price"] == pytest.approx(100.0 * (1 - SLIP))
    assert (exit_["reason"], exit_["slippage"]) == ("take_profit", 0.0)
    assert exit_["price"] == pytest.approx(99.4)


def test_round_trip_costs_add_up_to_the_final_equity():
    bars = calm_bars(40)
    set_bar(bars, WARMUP + 1, 100.2, 100.3, 100.1, 100.2)
    set_bar(bars, WARMUP + 3, 100.5, 100.55, 100.45, 100.5)
    sig = signals(
        [(bars, WARMUP, "BTCUSDT", "BUY", 0.9), (bars, WARMUP + 2, "BTCUSDT", "SELL", 0.9)]
    )
    res = run_backtest({"BTCUSDT": bars}, sig, CRYPTO, config())
    buy = 100.2 * (1 + SLIP)
    sell = 100.5 * (1 - SLIP)
    fees = QTY * buy * FEE + QTY * sell * FEE
    pnl = QTY * (sell - buy) - fees
    trade = res.trades.iloc[0]
    assert trade["exit_reason"] == "signal_close"
    assert trade["pnl"] == pytest.approx(pnl)
    assert trade["fees"] == pytest.approx(fees)
    assert res.final_equity == pytest.approx(100_000.0 + pnl)
    m = res.metrics()
    assert m["n_trades"] == 1 and m["fees_paid"] == pytest.approx(fees)
    assert m["turnover"] == pytest.approx(QTY * (buy + sell) / res.equity["equity"].mean())


def test_daily_drawdown_halts_flattens_at_next_open_and_resumes_next_day():
    # Wide percent stops so the position survives a 10% drop: 25% notional x 10% = 2.5% > 2%.
    bars = calm_bars(300)
    crash = WARMUP + 5
    set_bar(bars, crash, 100.0, 100.1, 89.9, 90.0)
    bars.loc[crash + 1 :, ["open", "high", "low", "close"]] = [90.0, 90.1, 89.9, 90.0]
    next_day = 288  # 2025-01-02 00:00 UTC
    sig = signals(
        [
            (bars, WARMUP, "BTCUSDT", "BUY", 0.9),
            (bars, crash + 3, "BTCUSDT", "BUY", 0.9),  # same day: refused, HALTED
            (bars, next_day + 2, "BTCUSDT", "BUY", 0.9),  # next day: allowed again
        ]
    )
    cfg = config(stop_mode="pct", stop_loss_pct=0.2, take_profit_pct=0.5, risk_per_trade=0.2)
    res = run_backtest({"BTCUSDT": bars}, sig, CRYPTO, cfg)
    flatten = res.fills[res.fills["reason"] == "flatten"]
    assert len(flatten) == 1
    assert flatten["ts"].iloc[0] == bars["ts"].iloc[crash + 1]  # the next open, not the close
    assert flatten["ref_price"].iloc[0] == 90.0
    states = res.equity["risk_state"]
    assert states.iloc[crash] == "HALTED" and states.iloc[crash - 1] == "ACTIVE"
    assert (states.iloc[crash : next_day - 1] == "HALTED").all()
    assert states.iloc[next_day] == "ACTIVE"
    assert res.hold_reasons["halted:daily_drawdown"] == 1
    entries = res.fills[res.fills["reason"] == "entry"]
    assert list(entries["ts"]) == [bars["ts"].iloc[WARMUP + 1], bars["ts"].iloc[next_day + 3]]
    assert res.decisions["FLATTEN_ALL"] == 1


def test_two_tickers_share_one_cash_account():
    btc = calm_bars(40)
    eth = calm_bars(40, price=50.0, half_range=0.05).iloc[::2].reset_index(drop=True)  # 10-min gaps
    sig = signals([(btc, 30, "BTCUSDT", "BUY", 0.9), (eth, 15, "ETHUSDT", "BUY", 0.9)])
    # Gross cap 30%: BTC takes 25% (pending), so ETH gets only the 5% left.
    res = run_backtest(
        {"BTCUSDT": btc, "ETHUSDT": eth}, sig, CRYPTO, config(max_gross_exposure=0.3)
    )
    by = res.fills.set_index("ticker")
    assert by.loc["BTCUSDT", "qty"] == pytest.approx(250.0)
    assert by.loc["ETHUSDT", "qty"] * 50.0 == pytest.approx(5_000.0)
    fees = float(res.fills["fee"].sum())
    cash = 100_000.0 - float((res.fills["qty"] * res.fills["price"]).sum()) - fees
    value = 250.0 * 100.0 + by.loc["ETHUSDT", "qty"] * 50.0
    assert res.final_equity == pytest.approx(cash + value)
    assert len(res.equity) == 40  # one row per distinct bar time across both tickers


def test_truncated_data_gives_the_same_fills_no_look_ahead():
    from tests.builders import bars_frame

    bars = bars_frame(1500, seed=7)
    rng = np.random.default_rng(1)
    sig = pd.DataFrame(
        {
            "ts": bars["ts"],
            "ticker": "BTCUSDT",
            "signal": rng.choice(["BUY", "SELL", "HOLD"], len(bars)),
            "confidence": rng.uniform(0.6, 1.0, len(bars)),
        }
    )
    full = run_backtest({"BTCUSDT": bars}, sig, CRYPTO, config())
    cut = 900
    part = run_backtest({"BTCUSDT": bars.iloc[:cut]}, sig.iloc[:cut], CRYPTO, config())
    limit = bars["ts"].iloc[cut - 1]
    pd.testing.assert_frame_equal(part.fills, full.fills[full.fills["ts"] <= limit])
    np.testing.assert_array_equal(part.equity["equity"], full.equity["equity"].iloc[:cut])
    assert len(full.fills) > 50  # the scenario really trades


def test_signal_off_the_bar_grid_is_an_error_here():
    bars = calm_bars(30)
    sig = signals([(bars, WARMUP, "BTCUSDT", "BUY", 0.9)])
    sig.loc[0, "ts"] = sig.loc[0, "ts"] + pd.Timedelta(minutes=1)
    with pytest.raises(ValueError, match="not on a bar"):
        run_backtest({"BTCUSDT": bars}, sig, CRYPTO, config())


class RecordingEngine(RiskEngine):
    """The real risk engine, remembering what on_mark was given."""

    __slots__ = ("seen",)

    def __init__(self, settings):
        super().__init__(settings)
        self.seen = []

    def on_mark(self, portfolio, now, asset_class):
        self.seen.append((now, portfolio.equity, portfolio.day_open_equity))
        return super().on_mark(portfolio, now, asset_class)


def _drifting_long(bars: pd.DataFrame, classes, cfg):
    """Hold a long while prices drift up, recording every on_mark."""
    n = len(bars)
    path = 100.0 + 0.01 * np.arange(n)
    bars[["open", "close"]] = np.column_stack([path, path])
    bars["high"], bars["low"] = path + 0.1, path - 0.1
    engine = RecordingEngine(cfg.risk)
    sig = signals([(bars, WARMUP, "BTCUSDT", "BUY", 0.9)])
    run_backtest({"BTCUSDT": bars}, sig, classes, cfg, engine=engine)
    return pd.DataFrame(engine.seen, columns=["now", "equity", "day_open"])


def test_day_open_equity_is_the_mark_at_midnight_for_crypto():
    cfg = config(stop_mode="pct", stop_loss_pct=0.5, take_profit_pct=0.9)
    seen = _drifting_long(calm_bars(600), CRYPTO, cfg)
    midnight = seen.index[seen["now"] == pd.Timestamp("2025-01-02T00:00Z")][0]
    assert seen["equity"].iloc[midnight] != seen["equity"].iloc[midnight - 1]  # equity moves
    assert (seen["day_open"].iloc[midnight : midnight + 288] == seen["equity"].iloc[midnight]).all()
    assert (seen["day_open"].iloc[:midnight] == 100_000.0).all()
    assert len(seen) == 600  # on_mark at every bar close


def test_day_open_equity_is_the_previous_session_close_for_stocks():
    # Two regular sessions, 09:30-16:00 New York (14:30-21:00 UTC in January).
    day1 = pd.date_range("2025-01-06T14:30Z", periods=78, freq="5min")
    day2 = pd.date_range("2025-01-07T14:30Z", periods=78, freq="5min")
    bars = calm_bars(156)
    bars["ts"] = pd.Series(day1.append(day2)).astype("datetime64[ns, UTC]")
    cfg = config(stop_mode="pct", stop_loss_pct=0.5, take_profit_pct=0.9)
    seen = _drifting_long(bars, {"BTCUSDT": AssetClass.STOCKS}, cfg)
    first_of_day2 = 78
    assert (seen["day_open"].iloc[first_of_day2:] == seen["equity"].iloc[first_of_day2 - 1]).all()
    assert (seen["day_open"].iloc[:first_of_day2] == 100_000.0).all()


def test_halt_lifts_when_the_run_calendar_rolls_not_the_tickers():
    # A crypto ticker on the stocks calendar: the crash at 02:05 UTC is 21:05 New York on Dec 31,
    # so the day rolls at New York midnight, 05:00 UTC on Jan 1 (crypto's would be 00:00 UTC on
    # Jan 2), both for day_open_equity and for lifting the halt.
    bars = calm_bars(400)
    crash = WARMUP + 5
    set_bar(bars, crash, 100.0, 100.1, 89.9, 90.0)
    bars.loc[crash + 1 :, ["open", "high", "low", "close"]] = [90.0, 90.1, 89.9, 90.0]
    cfg = config(stop_mode="pct", stop_loss_pct=0.2, take_profit_pct=0.5, risk_per_trade=0.2)
    cfg = BacktestConfig(
        initial_equity=cfg.initial_equity,
        risk=cfg.risk,
        costs=cfg.costs,
        calendar=AssetClass.STOCKS,
    )
    res = run_backtest({"BTCUSDT": bars}, long_at(bars), CRYPTO, cfg)
    states = res.equity.set_index("ts")["risk_state"]
    lift = pd.Timestamp("2025-01-01T05:00Z") - pd.Timedelta(minutes=5)  # bar closing at 05:00 UTC
    assert states.loc[: lift - pd.Timedelta(minutes=5)].iloc[crash:].eq("HALTED").all()
    assert states.loc[lift:].eq("ACTIVE").all()


def test_an_entry_waiting_for_its_next_open_is_cancelled_when_a_halt_starts():
    # BTC trades every bar, ETH every third: ETH's BUY (decided while ACTIVE) waits for ETH's
    # next open, and BTC's crash halts the account in between. The entry must not fill.
    btc = calm_bars(300)
    eth = calm_bars(300, price=500.0).iloc[::3].reset_index(drop=True)
    eth_signal = 20  # ETH bar 20 = BTC bar 60
    crash = 61
    set_bar(btc, crash, 100.0, 100.1, 89.9, 90.0)
    btc.loc[crash + 1 :, ["open", "high", "low", "close"]] = [90.0, 90.1, 89.9, 90.0]
    sig = signals([(btc, 50, "BTCUSDT", "BUY", 0.9), (eth, eth_signal, "ETHUSDT", "BUY", 0.9)])
    cfg = config(stop_mode="pct", stop_loss_pct=0.2, take_profit_pct=0.5, risk_per_trade=0.2)
    res = run_backtest({"BTCUSDT": btc, "ETHUSDT": eth}, sig, CRYPTO, cfg)
    assert res.decisions["FLATTEN_ALL"] == 1
    assert res.equity["risk_state"].iloc[crash] == "HALTED"
    entries = res.fills[res.fills["reason"] == "entry"]
    assert list(entries["ticker"]) == ["BTCUSDT"], "an entry filled while HALTED"
    assert res.metrics()["orders_skipped"] == {"entry_cancelled:entry": 1}
