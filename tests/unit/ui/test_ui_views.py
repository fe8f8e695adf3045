"""The panel's pure builders: API JSON in, frames, figures and text out."""

from __future__ import annotations

import math

import pytest

from ui.history import SignalHistory
from ui.views import controls, feeds, models, overview, portfolio, signals
from ui.views.fmt import DASH, age, parse_ts, pct

POINTS = [
    {"ts": "2025-01-01T00:00:00Z", "equity": 100.0},
    {"ts": "2025-01-01T00:05:00Z", "equity": 110.0},
    {"ts": "2025-01-01T00:10:00Z", "equity": 99.0},
    {"ts": "2025-01-01T00:15:00Z", "equity": 121.0},
]


def signal(
    ticker: str = "BTCUSDT",
    action: str = "BUY",
    as_of: str = "2025-01-01T00:05:00Z",
    stale: bool = False,
) -> dict:
    return {
        "ticker": ticker,
        "signal": action,
        "confidence": 0.81234,
        "probs": {"up": 0.81234, "down": 0.1, "flat": 0.08766},
        "model_version": "v1",
        "as_of": as_of,
        "computed_at": as_of,
        "age_s": 30.0,
        "stale": stale,
        "risk": {"state": "ACTIVE", "action": "OPEN_LONG", "reasons": ["a", "b"]},
    }


def test_drawdown_is_equity_over_its_running_peak() -> None:
    frame = overview.equity_frame(POINTS)
    assert frame["drawdown"].tolist() == pytest.approx([0.0, 0.0, 99 / 110 - 1, 0.0])
    assert str(frame["ts"].dt.tz) == "UTC"


def test_equity_figure_has_equity_and_drawdown_traces() -> None:
    fig = overview.equity_figure(POINTS)
    assert [t.name for t in fig.data] == ["equity", "drawdown %"]
    assert list(fig.data[0].y) == [100.0, 110.0, 99.0, 121.0]
    assert min(fig.data[1].y) == pytest.approx((99 / 110 - 1) * 100)
    empty = overview.equity_figure([])
    assert empty.layout.annotations[-1].text == "no equity marked yet"


def test_metrics_frame_formats_and_dashes_what_is_missing() -> None:
    port = {
        "equity": 1010.0,
        "day_open_equity": 1000.0,
        "day_pnl": 10.0,
        "day_drawdown": 0.0,
        "gross_exposure": 0.5,
        "net_exposure": None,
    }
    perf = {
        "total_return": 0.0123,
        "sharpe": None,
        "max_drawdown": 0.05,
        "win_rate": 0.5,
        "n_trades": 4,
        "bars": 12,
    }
    rows = dict(overview.metrics_frame(port, perf).values.tolist())
    assert rows["Today's P&L"] == "+10.00 (1.00%)"
    assert rows["Total return"] == "1.23%"
    assert rows["Sharpe (annualized)"] == DASH
    assert rows["Win rate"] == "50.0% of 4"
    assert rows["Exposure gross / net"] == f"50.0% / {DASH}"


def test_risk_html_shows_state_reasons_and_halt_time_escaped() -> None:
    text = overview.risk_html(
        {
            "state": "HALTED",
            "reasons": ["halted:kill_switch:<b>x</b>"],
            "halt_until": "2025-01-02T00:00:00Z",
        }
    )
    assert "HALTED" in text and "#c62828" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text
    assert "2025-01-02 00:00 UTC" in text


def test_badge_says_paper_live_or_unknown() -> None:
    assert "PAPER" in overview.badge_html(
        {"mode": "paper", "venue": "paper", "started_at": "2025-01-01T00:00:00Z"}
    )
    live = overview.badge_html({"mode": "live", "venue": "binance", "started_at": None})
    assert "LIVE" in live and "#c62828" in live
    assert "MODE UNKNOWN" in overview.badge_html(None, "no /v1/run")


def test_signals_frame_one_row_per_ticker_sorted() -> None:
    frame = signals.signals_frame([signal("ETHUSDT", stale=True), signal("BTCUSDT")])
    assert frame["ticker"].tolist() == ["BTCUSDT", "ETHUSDT"]
    assert frame["stale"].tolist() == ["", "STALE"]
    assert frame.loc[0, "confidence"] == 0.8123 and frame.loc[0, "risk_reasons"] == "a, b"
    assert list(frame.columns) == signals.SIGNAL_COLUMNS
    assert signals.signals_frame([]).empty


def test_candle_figure_overlays_signals_above_bars_and_fills_at_price() -> None:
    bars = [
        {"ts": "2025-01-01T00:05:00Z", "open": 10, "high": 12, "low": 9, "close": 11, "volume": 1}
    ]
    fills = [
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "qty": 1,
            "price": 10.5,
            "ts": "2025-01-01T00:10:00Z",
            "reason": "entry",
        },
        {
            "symbol": "ETHUSDT",
            "side": "SELL",
            "qty": 1,
            "price": 3.0,
            "ts": "2025-01-01T00:10:00Z",
            "reason": "entry",
        },
    ]
    sigs = [signal(), signal("BTCUSDT", "SELL", "2025-01-01T00:05:00Z"), signal("ETHUSDT")]
    fig = signals.candle_figure("BTCUSDT", bars, sigs, fills)
    names = [t.name for t in fig.data]
    assert names == ["BTCUSDT", "signal BUY", "signal SELL", "fill BUY"]
    assert fig.data[1].y[0] > 12 and fig.data[2].y[0] < 9  # BUY above the bar, SELL below
    assert list(fig.data[3].y) == [10.5]


def test_headlines_frame() -> None:
    frame = signals.headlines_frame(
        [
            {
                "published_at": "2025-01-01T00:00:00Z",
                "sentiment": 0.51234,
                "topics": ["a", "b"],
                "title": "T",
                "source": "s",
            }
        ]
    )
    assert frame.iloc[0].tolist() == ["2025-01-01 00:00 UTC", 0.512, "a, b", "T", "s"]


def test_open_orders_keep_non_terminal_with_sl_tp() -> None:
    orders = [
        {
            "client_order_id": c,
            "status": s,
            "stop_loss": 9.0,
            "take_profit": 12.0,
            "updated_at": "2025-01-01T00:00:00Z",
        }
        for c, s in [("a", "FILLED"), ("b", "ACCEPTED"), ("c", "UNKNOWN"), ("d", "CANCELED")]
    ]
    frame = portfolio.open_orders_frame(orders)
    assert frame["client_order_id"].tolist() == ["b", "c"]
    assert frame["stop_loss"].tolist() == [9.0, 9.0]


def test_fills_newest_first_and_capped() -> None:
    fills = [{"ts": f"2025-01-01T00:0{i}:00Z", "client_order_id": str(i)} for i in range(5)]
    assert portfolio.fills_frame(fills, limit=2)["client_order_id"].tolist() == ["4", "3"]


def test_models_frame_puts_baselines_and_oracle_beside_the_model() -> None:
    rows = [
        {"version": "v1", "promoted": False, "metrics": {"val_dacc": 0.55}},
        {
            "version": "v2",
            "promoted": True,
            "kind": "transformer",
            "metrics": {
                "pooled": {"dacc": 0.58, "sharpe": 1.5},
                "oracle_dacc": 0.6,
                "baselines": {"majority": 0.5, "logreg": {"dacc": 0.57}},
            },
        },
    ]
    frame = models.models_frame(rows)
    assert frame["version"].tolist() == ["v2", "v1"]
    first = frame.iloc[0]
    assert (first["dacc"], first["logreg"], first["majority"], first["oracle"]) == (
        "58.00%",
        "57.00%",
        "50.00%",
        "60.00%",
    )
    assert frame.iloc[1]["oracle"] == DASH and frame.iloc[1]["dacc"] == "55.00%"
    assert models.current_version(rows) == "v2" and "`v2`" in models.current_markdown(rows)
    assert "no version promoted" in models.current_markdown(rows[:1])
    fig = models.dacc_figure(rows)
    assert [t.name for t in fig.data] == ["model", "logreg", "majority", "oracle"]


def test_feeds_frame() -> None:
    frame = feeds.feeds_frame(
        [
            {
                "source": "s",
                "asset_class": "crypto",
                "status": "stale",
                "last_bar_ts": None,
                "lag_s": 1000.0,
                "limit_s": 900.0,
                "symbols": ["A", "B"],
            }
        ]
    )
    assert frame.iloc[0].tolist() == ["s", "crypto", "STALE", DASH, "16.7 min", "15.0 min", "A, B"]


def test_commands_need_their_argument_and_a_known_action() -> None:
    with pytest.raises(ValueError, match="halt needs a reason"):
        controls.Command("halt", " ")
    with pytest.raises(ValueError, match="Command.action='flatten'"):
        controls.Command("flatten")
    text = controls.prompt_markdown(controls.Command("halt", "a `b`"))
    assert "kill switch" in text and "a 'b'" in text
    answer = controls.risk_answer_markdown(
        controls.Command("halt", "x"), {"state": "HALTED", "reasons": ["halted:kill_switch:x"]}
    )
    assert "HALTED" in answer and "halted:kill_switch:x" in answer


def test_formatting_helpers() -> None:
    assert pct(None) == DASH and pct(math.nan) == DASH and pct(0.1234) == "12.34%"
    assert age(30) == "30 s" and age(600) == "10.0 min" and age(7200) == "2.0 h"
    assert parse_ts("2025-01-01T01:00:00+01:00").isoformat() == "2025-01-01T00:00:00+00:00"
    with pytest.raises(ValueError, match="UTC offsets"):
        parse_ts("2025-01-01T00:00:00")


def test_signal_history_keeps_distinct_bars_bounded() -> None:
    h = SignalHistory(max_per_ticker=2)
    h.add([signal(as_of="2025-01-01T00:00:00Z")])
    h.add([signal(as_of="2025-01-01T00:00:00Z", action="SELL")])  # same bar re-read: replaced
    assert [s["signal"] for s in h.of("BTCUSDT")] == ["SELL"]
    h.add([signal(as_of="2025-01-01T00:05:00Z"), signal(as_of="2025-01-01T00:10:00Z")])
    assert [s["as_of"][11:16] for s in h.of("BTCUSDT")] == ["00:05", "00:10"]
    assert h.of("ETHUSDT") == []


def test_feed_switch_frame_and_job_markdown() -> None:
    from ui.views.feeds import control_frame
    from ui.views.jobs import job_markdown

    frame = control_frame(
        [
            {"asset_class": "crypto", "state": "stopped", "stopped_at": "2025-01-01T00:05:00Z"},
            {"asset_class": "stocks", "state": "running", "stopped_at": None},
        ]
    )
    assert frame["feed"].tolist() == ["STOPPED", "RUNNING"]
    assert frame["stopped_at"].tolist()[1] == "" and "2025-01-01" in frame["stopped_at"][0]
    assert "kinds: walkforward" in job_markdown(None, ["walkforward"])
    job = {
        "id": "walkforward-20250101T000000-abcdef",
        "kind": "walkforward",
        "runner": "local",
        "status": "FAILED",
        "message": "exit code 2",
        "submitted_at": "2025-01-01T00:00:00Z",
        "entrypoint": "-m app walkforward --quick",
        "log_tail": ["fold 0", "boom ```"],
        "report": None,
        "summary": None,
    }
    text = job_markdown(job)
    assert "**FAILED** (exit code 2)" in text and "fold 0" in text and "boom '''" in text
    done = {**job, "status": "SUCCEEDED", "message": "", "report": "/r/report.md"}
    text = job_markdown({**done, "summary": {"version": "lstm-x", "pooled": {"dacc": 0.5}}})
    assert "report: `/r/report.md`" in text and "`version` lstm-x" in text and "pooled" not in text
