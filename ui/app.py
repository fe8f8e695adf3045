"""The control panel: one ``gr.Blocks`` with a tab per view, refreshed on a ``gr.Timer``.

``build_blocks(panel, refresh_s)`` lays out the tabs and wires the callbacks of
:class:`ui.callbacks.Panel`; ``launch`` serves it, with a login whenever a password is set,
and refuses a non-loopback address without one. Layout only: every decision is in the
callbacks and the views, which the tests call directly.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home

import gradio as gr  # noqa: E402

from app.config import UiSettings  # noqa: E402
from ui.callbacks import Panel  # noqa: E402
from ui.client import ApiClient  # noqa: E402

CSS = """
#mode-badge {text-align:center}
.status-line {font-size:0.9em;color:#555}
"""


class PanelConfigError(ValueError):
    """The panel would be reachable from outside without a login."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, password: object | None) -> None:
    if password is None and not is_loopback(host):
        raise PanelConfigError(
            f"panel host={host!r} is not a loopback address and APP_UI__PASSWORD is not set: "
            "refusing to serve the controls without a login"
        )


def _dropdown(choices: list[str], value: str | None) -> Any:
    chosen = value if value in choices else (choices[0] if choices else None)
    return gr.update(choices=choices, value=chosen)


def build_blocks(panel: Panel, refresh_s: float = 5.0) -> gr.Blocks:
    with gr.Blocks(title="seed-trader control panel", analytics_enabled=False) as demo:
        badge = gr.HTML(elem_id="badge-box")
        with gr.Tabs():
            with gr.Tab("Overview", id="overview"):
                with gr.Row():
                    risk = gr.HTML(elem_id="risk-box")
                    metrics = gr.Dataframe(label="Performance", interactive=False)
                equity = gr.Plot(label="Equity and drawdown", elem_id="equity-chart")
                overview_status = gr.Markdown(elem_classes="status-line")
            with gr.Tab("Signals", id="signals"):
                table = gr.Dataframe(
                    label="Latest signals", interactive=False, elem_id="signals-table"
                )
                ticker = gr.Dropdown(label="Ticker", choices=[], interactive=True)
                candle = gr.Plot(label="Bars, signals and fills", elem_id="candle-chart")
                news = gr.Dataframe(label="Last headlines", interactive=False)
                signals_status = gr.Markdown(elem_classes="status-line")
            with gr.Tab("Portfolio", id="portfolio"):
                positions = gr.Dataframe(label="Positions", interactive=False)
                orders = gr.Dataframe(label="Open orders (SL / TP)", interactive=False)
                fills = gr.Dataframe(label="Recent fills", interactive=False)
                portfolio_status = gr.Markdown(elem_classes="status-line")
            with gr.Tab("Models and research", id="models"):
                serving = gr.Markdown()
                versions = gr.Dataframe(label="Registered versions", interactive=False)
                dacc = gr.Plot(label="Walk-forward DACC beside baselines and oracle")
                with gr.Row():
                    version = gr.Dropdown(label="Version", choices=[], interactive=True)
                    promote = gr.Button("Promote…", elem_id="promote")
                models_status = gr.Markdown(elem_classes="status-line")
                gr.Markdown("**Research jobs** (a Ray job, or a subprocess of the worker)")
                with gr.Row():
                    job_kind = gr.Dropdown(label="Job", choices=[], interactive=True)
                    start_job = gr.Button("Start job…", elem_id="start-job")
                job_box = gr.Markdown(elem_id="job-box")
                jobs_status = gr.Markdown(elem_classes="status-line")
            with gr.Tab("Feeds", id="feeds"):
                feed_table = gr.Dataframe(label="Sources", interactive=False)
                switch_table = gr.Dataframe(label="Feeds per asset class", interactive=False)
                with gr.Row():
                    feed_class = gr.Dropdown(label="Asset class", choices=[], interactive=True)
                    stop_feed = gr.Button("Stop feed…", elem_id="stop-feed")
                    start_feed = gr.Button("Start feed…", elem_id="start-feed")
                feeds_status = gr.Markdown(elem_classes="status-line")
            with gr.Tab("Controls", id="controls"):
                control_risk = gr.HTML(elem_id="control-risk")
                reason = gr.Textbox(label="Reason for a halt", value="operator kill switch")
                with gr.Row():
                    halt = gr.Button("HALT (kill switch)", variant="stop", elem_id="halt")
                    resume = gr.Button("Resume", elem_id="resume")
                    reducing_on = gr.Button("Reducing only", elem_id="reducing-on")
                    reducing_off = gr.Button("Leave reducing", elem_id="reducing-off")
        with gr.Group(visible=False) as confirm_box:
            prompt = gr.Markdown(elem_id="confirm-prompt")
            with gr.Row():
                confirm = gr.Button("Confirm", variant="stop", elem_id="confirm")
                cancel = gr.Button("Cancel", elem_id="cancel")
        answer = gr.Markdown(elem_id="answer")
        pending = gr.State(None)

        overview_out = [badge, risk, metrics, equity, overview_status]
        signals_out = [table, ticker, candle, news, signals_status]
        models_out = [versions, dacc, serving, version, models_status]

        def do_overview() -> tuple[Any, ...]:
            out = panel.overview()
            return out

        def do_signals(chosen: str | None) -> tuple[Any, ...]:
            frame, tickers, fig, headlines, status = panel.signals(chosen)
            return frame, _dropdown(tickers, chosen), fig, headlines, status

        def do_models(chosen: str | None) -> tuple[Any, ...]:
            frame, fig, line, names, status = panel.models()
            return frame, fig, line, _dropdown(names, chosen), status

        def do_feeds(chosen: str | None) -> tuple[Any, ...]:
            frame, switch, classes, status = panel.feeds()
            return frame, switch, _dropdown(classes, chosen), status

        def do_jobs(chosen: str | None) -> tuple[Any, ...]:
            text, kinds, status = panel.jobs()
            return text, _dropdown(kinds, chosen), status

        def do_control_risk() -> str:
            return panel.overview()[1]

        def ask(action: str, arg: str = "") -> tuple[Any, ...]:
            command, text = panel.ask(action, arg)
            return command, gr.update(visible=command is not None), text, "" if command else text

        def do_confirm(command: Any) -> tuple[Any, ...]:
            text = panel.confirm(command)
            return None, gr.update(visible=False), text

        ask_out = [pending, confirm_box, prompt, answer]
        halt.click(lambda r: ask("halt", r), [reason], ask_out)
        resume.click(lambda: ask("resume"), None, ask_out)
        reducing_on.click(lambda: ask("reducing_on"), None, ask_out)
        reducing_off.click(lambda: ask("reducing_off"), None, ask_out)
        promote.click(lambda v: ask("promote", v or ""), [version], ask_out)
        stop_feed.click(lambda c: ask("feed_stop", c or ""), [feed_class], ask_out)
        start_feed.click(lambda c: ask("feed_start", c or ""), [feed_class], ask_out)
        start_job.click(lambda k: ask("job_start", k or ""), [job_kind], ask_out)
        feeds_out = [feed_table, switch_table, feed_class, feeds_status]
        jobs_out = [job_box, job_kind, jobs_status]
        confirm.click(do_confirm, [pending], [pending, confirm_box, answer]).then(
            do_overview, None, overview_out
        ).then(do_control_risk, None, control_risk).then(do_models, [version], models_out).then(
            do_feeds, [feed_class], feeds_out
        ).then(do_jobs, [job_kind], jobs_out)
        cancel.click(
            lambda: (None, gr.update(visible=False), "cancelled"),
            None,
            [pending, confirm_box, answer],
        )

        ticker.change(do_signals, [ticker], signals_out)
        timer = gr.Timer(refresh_s)
        for event in (demo.load, timer.tick):
            event(do_overview, None, overview_out)
            event(do_signals, [ticker], signals_out)
            event(panel.portfolio, None, [positions, orders, fills, portfolio_status])
            event(do_feeds, [feed_class], feeds_out)
            event(do_jobs, [job_kind], jobs_out)
            event(do_control_risk, None, control_risk)
        demo.load(do_models, [version], models_out)
    return demo


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    demo: gr.Blocks


def launch(ui: UiSettings, *, block: bool = True) -> Served:
    """Serve the panel for ``ui.api_url`` on ``ui.host:ui.port`` (login when a password is set)."""
    check_exposure(ui.host, ui.password)
    panel = Panel(ApiClient.from_settings(ui), ui.chart_bars)
    demo = build_blocks(panel, ui.refresh_s)
    auth = None
    if ui.password is not None:
        auth = (ui.user, ui.password.get_secret_value())
    _app, url, _share = demo.launch(
        server_name=ui.host,
        server_port=ui.port,
        auth=auth,
        auth_message="seed-trader control panel: sign in (APP_UI__USER / APP_UI__PASSWORD)",
        share=False,
        prevent_thread_lock=not block,
        show_error=False,
        quiet=True,
        ssr_mode=False,
        footer_links=[],
        css=CSS,
        enable_monitoring=False,
        mcp_server=False,
        pwa=False,
    )
    return Served(url=str(url), demo=demo)
