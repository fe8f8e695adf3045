"""Signal-file checks with reasons, metrics on hand-computed series, the EMA rule's causality."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from bt_scenarios import calm_bars

from app.backtest.metrics import (
    bar_returns,
    cagr,
    compute_metrics,
    drawdown_curve,
    max_drawdown_duration,
)
from app.backtest.rule_signals import EmaCrossRule, rule_signals
from app.backtest.signals_io import SignalBatch, check_signals
from app.broker.portfolio import Portfolio
from app.errors import InputError
from app.sources.backtest_files import read_signals_csv
from app.types import AssetClass
from tests.builders import bars_frame

SIGNALS_CSV = """ts,ticker,signal,confidence
2025-01-01T00:05:00Z,BTCUSDT,BUY,0.8
2025-01-01T00:10:00Z,BTCUSDT,sell,0.75
2025-01-01T00:15:00Z,DOGE,BUY,0.9
2025-01-01T00:20:00Z,BTCUSDT,BUY,1.5
2025-01-01T00:25:00Z,BTCUSDT,BUY,
2025-01-01T00:30:00Z,BTCUSDT,BUY,abc
2025-01-01T00:35:00Z,BTCUSDT,MAYBE,0.9
2025-01-01T00:37:00Z,BTCUSDT,BUY,0.9
yesterday,BTCUSDT,BUY,0.9
2025-01-01T00:40:00,BTCUSDT,BUY,0.9
2025-01-01T00:05:00+00:00,BTCUSDT,HOLD,0.5
2025-01-01T00:45:00+00:00,BTCUSDT,HOLD,0.5
"""


def read_signals(path, bars) -> SignalBatch:  # type: ignore[no-untyped-def]
    """What the backtest command does with a signals file: read it, then check the frame."""
    return check_signals(read_signals_csv(path), bars, origin=f"signals file {path}")


def test_bad_signal_rows_are_rejected_by_reason_and_good_rows_kept(tmp_path):
    path = tmp_path / "signals.csv"
    path.write_text(SIGNALS_CSV)
    batch = read_signals(path, {"BTCUSDT": calm_bars(50)})
    assert batch.summary() == {
        "read": 12,
        "accepted": 3,
        "rejected": 9,
        "rejected_by_reason": {
            "bad_timestamp": 2,  # unparseable, and naive (no UTC offset)
            "unknown_ticker": 1,
            "unknown_signal": 1,
            "confidence_nan": 2,  # empty and not a number
            "confidence_out_of_range": 1,
            "ts_not_on_bar": 1,
            "duplicate": 1,
        },
    }
    good = batch.signals
    assert list(good["signal"]) == ["BUY", "SELL", "HOLD"]
    assert str(good["ts"].dtype) == "datetime64[ns, UTC]"


def test_signal_file_without_required_columns_names_them(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("time,ticker,signal\n")
    with pytest.raises(InputError, match=r"missing column\(s\) \['ts', 'confidence'\]"):
        read_signals(path, {"BTCUSDT": calm_bars(5)})


def test_a_signals_frame_without_required_columns_names_them_and_its_origin():
    raw = pd.DataFrame({"ts": ["2025-01-01T00:05:00Z"], "ticker": ["BTCUSDT"]})
    with pytest.raises(InputError, match=r"^signals frame: missing column\(s\) \['signal', 'con"):
        check_signals(raw, {"BTCUSDT": calm_bars(5)})


def test_signal_file_that_is_absent_or_not_csv_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="signals file .*nope.csv does not exist"):
        read_signals_csv(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="signals file .*empty.csv: cannot be read as CSV"):
        read_signals_csv(empty)


def test_metrics_on_a_hand_computed_series():
    equity = np.array([100.0, 110.0, 99.0, 121.0])
    rets = np.array([0.0, 0.1, -0.1, 121.0 / 99.0 - 1.0])
    np.testing.assert_allclose(bar_returns(equity, 100.0), rets)
    np.testing.assert_allclose(drawdown_curve(equity), [0.0, 0.0, -0.1, 0.0])
    assert max_drawdown_duration(np.array([100.0, 110, 99, 105, 121, 120])) == 2
    trades = pd.DataFrame(
        {"pnl": [10.0, -5.0, 20.0, -5.0, 99.0], "exit_reason": ["x", "x", "x", "x", "open_at_end"]}
    )
    m = compute_metrics(
        equity,
        100.0,
        AssetClass.STOCKS,
        trades=trades,
        traded_notional=215.0,
        exposed=np.array([True, False, True, True]),
    )
    bpy = 252 * 78
    assert m["total_return"] == pytest.approx(0.21)
    assert m["max_drawdown"] == pytest.approx(0.1)
    assert m["max_drawdown_duration_bars"] == 1
    assert m["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(bpy))
    downside = math.sqrt((0.1**2) / 4)
    assert m["sortino"] == pytest.approx(rets.mean() / downside * math.sqrt(bpy))
    assert m["cagr"] is None  # 21% in 4 bars compounds beyond a float: reported as null
    assert cagr(100.0, 121.0, 2 * bpy, bpy) == pytest.approx(0.1)
    assert (m["n_trades"], m["win_rate"], m["profit_factor"]) == (4, 0.5, 3.0)
    assert m["turnover"] == pytest.approx(215.0 / equity.mean())
    assert m["exposure"] == 0.75


def test_metrics_of_a_flat_run_have_no_nan_in_json():
    m = compute_metrics(np.full(10, 100.0), 100.0, AssetClass.CRYPTO)
    assert m["sharpe"] is None and m["profit_factor"] is None and m["total_return"] == 0.0


def test_portfolio_flip_books_a_trade_and_opens_the_rest():
    pf = Portfolio(cash=1000.0)
    kw = dict(ref_price=0.0, slippage=0.0, fee_rate=0.01, reason="entry")
    pf.apply_fill(ts_ns=0, symbol="X", signed_qty=10.0, price=10.0, fee=1.0, **kw)
    pf.apply_fill(ts_ns=1, symbol="X", signed_qty=-15.0, price=12.0, fee=1.8, **kw)
    trade = pf.trades[0]
    # closed 10 of 10: pnl = 10 * 2 - entry fee 1.0 - exit fee share 1.8 * 10/15
    assert trade[4] == 10.0 and trade[10] == pytest.approx(20.0 - 1.0 - 1.2)
    assert pf.qty("X") == -5.0 and pf.slots["X"].avg_price == 12.0
    pf.marks["X"] = 11.0
    equity, exposed = pf.mark_to_market()
    assert equity == pytest.approx(1000.0 - 100.0 - 1.0 + 180.0 - 1.8 - 5 * 11.0) and exposed


def test_ema_rule_is_causal_and_confidence_in_range():
    bars = bars_frame(600, seed=5)
    full = rule_signals({"BTCUSDT": bars})
    part = rule_signals({"BTCUSDT": bars.iloc[:400]})
    pd.testing.assert_frame_equal(part, full.iloc[: len(part)])
    assert full["confidence"].between(0.5, 1.0).all()
    assert set(full["signal"]) <= {"BUY", "SELL", "HOLD"}
    assert full["ts"].iloc[0] >= bars["ts"].iloc[EmaCrossRule().slow - 1]


def test_a_rejected_row_does_not_shadow_a_later_valid_one_for_the_same_bar(tmp_path):
    path = tmp_path / "signals.csv"
    path.write_text(
        "ts,ticker,signal,confidence\n"
        "2025-01-01T00:10:00Z,BTCUSDT,BUY,abc\n"
        "2025-01-01T00:10:00Z,BTCUSDT,BUY,0.9\n"
        "2025-01-01T00:10:00Z,BTCUSDT,SELL,0.8\n"
    )
    batch = read_signals(path, {"BTCUSDT": calm_bars(50)})
    assert batch.summary()["rejected_by_reason"] == {"confidence_nan": 1, "duplicate": 1}
    assert list(batch.signals["confidence"]) == [0.9]
