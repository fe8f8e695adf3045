"""Signals: the live table, a candlestick per ticker with signals and fills on it, headlines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from app.types import Side, SignalAction
from ui.views.fmt import age, num, when

Json = dict[str, Any]

SIGNAL_COLUMNS = [
    "ticker",
    "signal",
    "confidence",
    "p_up",
    "p_down",
    "p_flat",
    "model_version",
    "as_of",
    "age",
    "stale",
    "risk_state",
    "risk_action",
    "risk_reasons",
]
_MARKERS = {
    SignalAction.BUY.value: ("triangle-up", "#1a7f37"),
    SignalAction.SELL.value: ("triangle-down", "#c62828"),
    SignalAction.HOLD.value: ("circle-open", "#777777"),
}


def signals_frame(signals: Sequence[Json]) -> pd.DataFrame:
    """``/v1/signals`` as one row per ticker, sorted by ticker."""
    rows = []
    for s in sorted(signals, key=lambda x: x["ticker"]):
        probs, risk = s.get("probs", {}), s.get("risk", {})
        rows.append(
            {
                "ticker": s["ticker"],
                "signal": s["signal"],
                "confidence": round(float(s["confidence"]), 4),
                "p_up": round(float(probs.get("up", float("nan"))), 4),
                "p_down": round(float(probs.get("down", float("nan"))), 4),
                "p_flat": round(float(probs.get("flat", float("nan"))), 4),
                "model_version": s.get("model_version", ""),
                "as_of": when(s.get("as_of")),
                "age": age(s.get("age_s")),
                "stale": "STALE" if s.get("stale") else "",
                "risk_state": risk.get("state", ""),
                "risk_action": risk.get("action", ""),
                "risk_reasons": ", ".join(risk.get("reasons", [])),
            }
        )
    return pd.DataFrame(rows, columns=SIGNAL_COLUMNS)


def candle_figure(
    ticker: str, bars: Sequence[Json], signals: Sequence[Json], fills: Sequence[Json]
) -> go.Figure:
    """Candles of ``bars``; each signal marked at its bar's close, each fill at its price.

    A signal computed on the bar that opened at ``as_of`` is drawn on that bar, just above
    (BUY) or below (SELL) it; fills are drawn where they traded.
    """
    fig = go.Figure()
    frame = pd.DataFrame(list(bars))
    highs: dict[pd.Timestamp, tuple[float, float]] = {}
    if not frame.empty:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        fig.add_trace(
            go.Candlestick(
                x=frame["ts"],
                open=frame["open"],
                high=frame["high"],
                low=frame["low"],
                close=frame["close"],
                name=ticker,
            )
        )
        highs = {
            t: (h, lo) for t, h, lo in zip(frame["ts"], frame["high"], frame["low"], strict=True)
        }
    mine = [s for s in signals if s.get("ticker") == ticker]
    for action, (symbol, colour) in _MARKERS.items():
        pts = [s for s in mine if s.get("signal") == action]
        if not pts:
            continue
        xs = [pd.Timestamp(s["as_of"]).tz_convert("UTC") for s in pts]
        ys = [_signal_y(highs.get(x), action) for x in xs]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=f"signal {action}",
                marker={"symbol": symbol, "size": 11, "color": colour},
                text=[
                    f"{action} {float(s['confidence']):.2f} ({s.get('model_version', '')})"
                    for s in pts
                ],
                hoverinfo="text+x",
            )
        )
    for side, colour in ((Side.BUY.value, "#0b5394"), (Side.SELL.value, "#e69138")):
        pts = [f for f in fills if f.get("symbol") == ticker and f.get("side") == side]
        if not pts:
            continue
        fig.add_trace(
            go.Scatter(
                x=[pd.Timestamp(f["ts"]).tz_convert("UTC") for f in pts],
                y=[float(f["price"]) for f in pts],
                mode="markers",
                name=f"fill {side}",
                marker={"symbol": "x", "size": 10, "color": colour},
                text=[
                    f"{side} {num(f['qty'], 4)} @ {num(f['price'], 4)} ({f.get('reason', '')})"
                    for f in pts
                ],
                hoverinfo="text+x",
            )
        )
    fig.update_layout(
        title=f"{ticker}: bars, signals, fills",
        height=460,
        xaxis_rangeslider_visible=False,
        margin={"l": 50, "r": 20, "t": 40, "b": 30},
    )
    if frame.empty:
        fig.add_annotation(
            text=f"no bars for {ticker} from the API",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
    return fig


def _signal_y(hl: tuple[float, float] | None, action: str) -> float | None:
    if hl is None:
        return None  # the bar is outside the chart: Plotly drops the point
    high, low = hl
    pad = (high - low) * 0.6 or abs(high) * 1e-4
    if action == SignalAction.SELL.value:
        return low - pad
    return high + pad


HEADLINE_COLUMNS = ["published", "sentiment", "topics", "title", "source"]


def headlines_frame(headlines: Sequence[Json]) -> pd.DataFrame:
    rows = [
        {
            "published": when(h.get("published_at")),
            "sentiment": None if h.get("sentiment") is None else round(float(h["sentiment"]), 3),
            "topics": ", ".join(h.get("topics", [])),
            "title": h.get("title", ""),
            "source": h.get("source", ""),
        }
        for h in headlines
    ]
    return pd.DataFrame(rows, columns=HEADLINE_COLUMNS)
