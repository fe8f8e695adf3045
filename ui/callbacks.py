"""The panel's callbacks as plain methods: one API round per tab, errors as readable text.

Each method returns exactly what its Gradio outputs show, so tests call them directly against
a real API. An :class:`~ui.client.ApiError` (API down, 401, timeout, ...) becomes a message in
the tab's status line; the other outputs fall back to empty tables and figures. Nothing here
lets a stack trace reach the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import plotly.graph_objects as go

from ui.client import ApiClient, ApiError
from ui.history import SignalHistory
from ui.views import controls, feeds, jobs, models, overview, portfolio, signals
from ui.views.fmt import when

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome:
    """A callback's status line: ok (with when the data is from) or the error's message."""

    ok: bool
    message: str

    def markdown(self) -> str:
        return self.message if self.ok else controls.error_markdown(self.message)


def _guard(fn: Callable[[], T]) -> tuple[T | None, Outcome]:
    try:
        return fn(), Outcome(True, "")
    except ApiError as exc:
        return None, Outcome(False, exc.message)
    except Exception as exc:  # the page shows a line, the log keeps the trace
        log.exception("panel callback failed")
        return None, Outcome(False, f"unexpected error in the panel: {type(exc).__name__}: {exc}")


class Panel:
    """Callbacks over one API client."""

    def __init__(self, client: ApiClient, chart_bars: int = 300) -> None:
        self.client = client
        self.chart_bars = chart_bars
        self.history = SignalHistory()

    # ------------------------------------------------------------------ Overview

    def overview(self) -> tuple[str, str, pd.DataFrame, go.Figure, str]:
        """badge, risk, metrics table, equity + drawdown figure, status."""
        c = self.client

        def fetch() -> tuple[Any, ...]:
            return c.portfolio(), c.performance(), c.risk(), c.equity(limit=1000)

        got, outcome = _guard(fetch)
        run, run_outcome = _guard(c.run_info)
        badge = overview.badge_html(run, None if run_outcome.ok else run_outcome.message)
        if got is None:
            empty = overview.metrics_frame({}, {})
            fig = overview.equity_figure([])
            return badge, overview.risk_html({"state": "UNKNOWN"}), empty, fig, outcome.markdown()
        port, perf, risk, points = got
        status = f"as of bar {when(port.get('ts'))} · {len(points)} equity points"
        return (
            badge,
            overview.risk_html(risk),
            overview.metrics_frame(port, perf),
            overview.equity_figure(points[-self.chart_bars :]),
            status,
        )

    # ------------------------------------------------------------------ Signals

    def signals(
        self, ticker: str | None
    ) -> tuple[pd.DataFrame, list[str], go.Figure, pd.DataFrame, str]:
        """signal table, tickers for the chooser, candlestick, headlines, status."""
        rows, outcome = _guard(self.client.signals)
        if rows is None:
            empty = signals.signals_frame([])
            fig = signals.candle_figure(ticker or "", [], [], [])
            return empty, [], fig, signals.headlines_frame([]), outcome.markdown()
        self.history.add(rows)
        tickers = sorted(s["ticker"] for s in rows)
        chosen = ticker if ticker in tickers else (tickers[0] if tickers else None)
        table = signals.signals_frame(rows)
        if chosen is None:
            fig = signals.candle_figure("", [], [], [])
            return table, tickers, fig, signals.headlines_frame([]), "no signal yet"
        fig, news, notes = self._ticker_detail(chosen)
        stale = int((table["stale"] == "STALE").sum())
        status = f"{len(rows)} tickers · {stale} stale" + "".join(f" · {n}" for n in notes)
        return table, tickers, fig, news, status

    def _ticker_detail(self, ticker: str) -> tuple[go.Figure, pd.DataFrame, list[str]]:
        c = self.client
        notes: list[str] = []
        bars, o = _guard(lambda: c.bars(ticker, self.chart_bars))
        if bars is None:
            notes.append(f"bars: {o.message}")
        fills, o = _guard(lambda: c.fills(limit=1000))
        if fills is None:
            notes.append(f"fills: {o.message}")
        news, o = _guard(lambda: c.headlines(ticker, 20))
        if news is None:
            notes.append(f"headlines: {o.message}")
        fig = signals.candle_figure(ticker, bars or [], self.history.of(ticker), fills or [])
        return fig, signals.headlines_frame(news or []), notes

    # ------------------------------------------------------------------ Portfolio

    def portfolio(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
        c = self.client
        got, outcome = _guard(lambda: (c.portfolio(), c.orders(limit=200), c.fills(limit=1000)))
        if got is None:
            return (
                portfolio.positions_frame({}),
                portfolio.open_orders_frame([]),
                portfolio.fills_frame([]),
                outcome.markdown(),
            )
        port, orders, fills = got
        opened = portfolio.open_orders_frame(orders)
        status = f"{len(port.get('positions', []))} positions · {len(opened)} open orders"
        return portfolio.positions_frame(port), opened, portfolio.fills_frame(fills), status

    # ------------------------------------------------------------------ Models

    def models(self) -> tuple[pd.DataFrame, go.Figure, str, list[str], str]:
        """versions table, DACC figure, serving line, version choices, status."""
        rows, outcome = _guard(self.client.models)
        if rows is None:
            return (models.models_frame([]), models.dacc_figure([]), "", [], outcome.markdown())
        versions = [m["version"] for m in reversed(rows)]
        return (
            models.models_frame(rows),
            models.dacc_figure(rows),
            models.current_markdown(rows),
            versions,
            f"{len(rows)} versions in the registry",
        )

    # ------------------------------------------------------------------ Feeds

    def feeds(self) -> tuple[pd.DataFrame, pd.DataFrame, list[str], str]:
        """sources table, per-class switch table, asset classes for the chooser, status."""
        rows, outcome = _guard(self.client.feeds)
        if rows is None:
            return feeds.feeds_frame([]), feeds.control_frame([]), [], outcome.markdown()
        bad = [f["source"] for f in rows if f.get("status") != "ok"]
        status = f"{len(rows)} feeds" + (f" · not ok: {', '.join(bad)}" if bad else " · all ok")
        switch, o = _guard(self.client.feed_control)
        if switch is None:  # an API without the switch: the table still shows
            return feeds.feeds_frame(rows), feeds.control_frame([]), [], f"{status} · {o.message}"
        stopped = [c["asset_class"] for c in switch if c["state"] == "stopped"]
        if stopped:
            status += f" · stopped: {', '.join(stopped)}"
        classes = [c["asset_class"] for c in switch]
        return feeds.feeds_frame(rows), feeds.control_frame(switch), classes, status

    # ------------------------------------------------------------------ research jobs

    def jobs(self) -> tuple[str, list[str], str]:
        """the latest job (Markdown), the kinds that can be started, status."""
        got, outcome = _guard(self.client.jobs)
        if got is None:
            return jobs.job_markdown(None), [], outcome.markdown()
        listed = got.get("jobs", [])
        latest = listed[0] if listed else None
        text = jobs.job_markdown(latest, got.get("kinds", []))
        return text, list(got.get("kinds", [])), f"{len(listed)} jobs started from this worker"

    # ------------------------------------------------------------------ commands

    def ask(self, action: str, arg: str = "") -> tuple[controls.Command | None, str]:
        """Step one: the command to confirm and its prompt (or why it cannot be asked)."""
        try:
            command = controls.Command(action, (arg or "").strip())
        except ValueError as exc:
            return None, controls.error_markdown(str(exc))
        return command, controls.prompt_markdown(command)

    def confirm(self, command: controls.Command | None) -> str:
        """Step two: send the confirmed command; the API's answer or its error, readable."""
        if command is None:
            return controls.error_markdown("nothing to confirm: choose a command first")
        c = self.client
        send: dict[str, Callable[[], Any]] = {
            "halt": lambda: c.halt(command.arg),
            "resume": c.resume,
            "reducing_on": lambda: c.set_reducing(True),
            "reducing_off": lambda: c.set_reducing(False),
            "promote": lambda: c.promote(command.arg),
            "feed_stop": lambda: c.stop_feed(command.arg),
            "feed_start": lambda: c.start_feed(command.arg),
            "job_start": lambda: c.start_job(command.arg),
        }
        answer, outcome = _guard(send[command.action])
        if answer is None:
            return outcome.markdown()
        if command.action == "promote":
            return controls.promotion_markdown(answer)
        if command.action.startswith("feed_"):
            return controls.feed_answer_markdown(command, answer)
        if command.action == "job_start":
            return controls.job_answer_markdown(answer)
        return controls.risk_answer_markdown(command, answer)
