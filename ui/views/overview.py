"""Overview: the equity and drawdown curves, the headline numbers, the risk state, the badge."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.types import RiskState
from ui.views.fmt import DASH, money, num, pct, when

Json = dict[str, Any]

RISK_COLOURS = {
    RiskState.ACTIVE.value: "#1a7f37",
    RiskState.REDUCING.value: "#b35900",
    RiskState.HALTED.value: "#c62828",
}


def equity_frame(points: Sequence[Json]) -> pd.DataFrame:
    """``/v1/equity`` points as ts, equity and drawdown (equity / running peak - 1, <= 0)."""
    if not points:
        return pd.DataFrame(
            {"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "equity": [], "drawdown": []}
        )
    ts = pd.to_datetime([p["ts"] for p in points], utc=True)
    equity = np.asarray([float(p["equity"]) for p in points], dtype=np.float64)
    peak = np.maximum.accumulate(equity)
    drawdown = np.where(peak > 0, equity / peak - 1.0, 0.0)
    return pd.DataFrame({"ts": ts, "equity": equity, "drawdown": drawdown})


def equity_figure(points: Sequence[Json]) -> go.Figure:
    """Equity on top, drawdown below, sharing the time axis."""
    frame = equity_frame(points)
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.68, 0.32],
        vertical_spacing=0.06,
        subplot_titles=("Equity", "Drawdown"),
    )
    fig.add_trace(
        go.Scatter(x=frame["ts"], y=frame["equity"], name="equity", line={"color": "#1f77b4"}),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=frame["ts"],
            y=frame["drawdown"] * 100,
            name="drawdown %",
            fill="tozeroy",
            line={"color": "#c62828"},
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="%", row=2, col=1)
    fig.update_layout(height=440, margin={"l": 50, "r": 20, "t": 40, "b": 30}, showlegend=False)
    if frame.empty:
        fig.add_annotation(
            text="no equity marked yet", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
        )
    return fig


def metrics_frame(portfolio: Json, performance: Json) -> pd.DataFrame:
    """Today's P&L, total return, Sharpe, max drawdown, win rate and exposure, one row each."""
    gross = portfolio.get("gross_exposure")
    net = portfolio.get("net_exposure")
    rows = [
        ("Equity", num(portfolio.get("equity"))),
        ("Today's P&L", f"{money(portfolio.get('day_pnl'))} ({pct(_day_return(portfolio))})"),
        ("Day drawdown", pct(portfolio.get("day_drawdown"))),
        ("Total return", pct(performance.get("total_return"))),
        ("Sharpe (annualized)", num(performance.get("sharpe"))),
        ("Max drawdown", pct(performance.get("max_drawdown"))),
        ("Win rate", f"{pct(performance.get('win_rate'), 1)} of {performance.get('n_trades', 0)}"),
        ("Exposure gross / net", f"{pct(gross, 1)} / {pct(net, 1)}"),
        ("Bars marked", str(performance.get("bars", DASH))),
    ]
    return pd.DataFrame(rows, columns=["metric", "value"])


def _day_return(portfolio: Json) -> float | None:
    start = portfolio.get("day_open_equity")
    pnl = portfolio.get("day_pnl")
    if not start or pnl is None:
        return None
    return float(pnl) / float(start)


def risk_html(risk: Json) -> str:
    """The risk state in large type, its reasons, and when a drawdown halt lifts."""
    state = str(risk.get("state", "UNKNOWN"))
    colour = RISK_COLOURS.get(state, "#555")
    reasons = risk.get("reasons") or []
    items = "".join(f"<li>{html.escape(str(r))}</li>" for r in reasons) or "<li>none</li>"
    halt = risk.get("halt_until")
    halt_line = f"<div>halted until <b>{html.escape(when(halt))}</b></div>" if halt else ""
    return (
        f'<div class="risk-state" style="border:3px solid {colour};'
        f'border-radius:8px;padding:10px 16px">'
        f'<div style="font-size:2.6em;font-weight:800;color:{colour}">{html.escape(state)}</div>'
        f"{halt_line}<div>reasons:</div><ul>{items}</ul></div>"
    )


def badge_html(run: Json | None, error: str | None = None) -> str:
    """PAPER (green) or LIVE (red, blinking-free but loud); amber when the API does not say."""
    if run is None:
        why = html.escape(error or "the API does not report it")
        return (
            '<div id="mode-badge" style="background:#b35900;color:white;padding:8px 14px;'
            f'border-radius:6px;font-weight:800;font-size:1.4em">MODE UNKNOWN — {why}</div>'
        )
    mode = str(run.get("mode", "?")).upper()
    colour = "#c62828" if mode == "LIVE" else "#1a7f37"
    venue = html.escape(str(run.get("venue", "")))
    return (
        f'<div id="mode-badge" style="background:{colour};color:white;padding:8px 14px;'
        f'border-radius:6px;font-weight:800;font-size:1.6em">{html.escape(mode)}'
        f'<span style="font-size:0.6em;font-weight:600"> trading · venue {venue} · since '
        f"{html.escape(when(run.get('started_at')))}</span></div>"
    )
