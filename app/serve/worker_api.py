"""What the live worker adds for the control panel: its API routes, feed switch, jobs, panel.

``build_api`` (app/serve/api.py) serves the live view; beside it, under the same keys, the
worker mounts the bars and headlines of its tickers (``market``), the run's mode (``run_info``),
the per-class feed switch (``feed_control``) and the research jobs (``jobs``). ``PanelSide``
holds those parts for the worker (app/worker.py): it builds the app, is asked per bar close
whether the class's feed runs (and files the bars on the tape), starts the panel as a child
process once the API listens, and ends the panel and the local jobs on stop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from app.clock import Clock
from app.config import Settings
from app.live.panel_process import PanelProcess
from app.serve.api import build_api
from app.serve.feed_control import FeedSwitch, feed_control_router
from app.serve.jobs import JobBoard, LocalJobRunner, RayJobRunner, jobs_router, walkforward_kind
from app.serve.market import MarketTape, TapeScorer, market_router
from app.serve.run_info import RunInfo, run_router
from app.serve.view import LiveView
from app.types import AssetClass


@dataclass(frozen=True, slots=True)
class WorkerApi:
    app: FastAPI
    tape: MarketTape
    switch: FeedSwitch
    jobs: JobBoard | None


def build_worker_api(
    view: LiveView,
    settings: Settings,
    *,
    tickers: Sequence[str],
    classes: Iterable[AssetClass],
    clock: Clock,
    info: RunInfo,
    jobs: JobBoard | None = None,
    tape: MarketTape | None = None,
) -> WorkerApi:
    """``settings.api`` must hold keys (``app.serve.auth.resolve_keys``)."""
    app = build_api(view, settings)
    tape = tape or MarketTape()
    switch = FeedSwitch(classes, clock)
    app.include_router(market_router(tape, tickers))
    app.include_router(run_router(info))
    app.include_router(feed_control_router(switch))
    if jobs is not None:
        app.include_router(jobs_router(jobs))
    return WorkerApi(app, tape, switch, jobs)


def job_board(
    data: Path | None,
    out: Path,
    registry_dir: Path,
    asset_class: AssetClass | None = None,
    jobs_address: str = "",
) -> JobBoard | None:
    """A walk-forward of the traded data: a Ray job with ``jobs_address``, else a subprocess."""
    if data is None:
        return None
    jobs_dir = out / "jobs"
    runner = RayJobRunner(jobs_address) if jobs_address else LocalJobRunner(jobs_dir)
    ac = asset_class.value if asset_class is not None else None
    return JobBoard(runner, {"walkforward": walkforward_kind(data, jobs_dir, registry_dir, ac)})


@dataclass
class PanelSide:
    """The worker's panel parts; see the module docstring. ``panel_port`` None: ui.port."""

    mode: str  # paper | live
    venue: str
    jobs: JobBoard | None = None
    panel: bool = True
    panel_port: int | None = None
    config: Path | None = None
    announce: Callable[[str], None] = print
    parts: WorkerApi | None = None
    process: PanelProcess | None = None

    @property
    def tape(self) -> MarketTape | None:
        return self.parts.tape if self.parts is not None else None

    def scorer(self, scorer: Any) -> Any:
        """The feed's headline scorer, filing what it scores on the tape when served."""
        return scorer if self.tape is None else TapeScorer(scorer, self.tape)

    def api(
        self, view: LiveView, settings: Settings, classes: Mapping[str, AssetClass], clock: Clock
    ) -> FastAPI:
        self.parts = build_worker_api(
            view,
            settings,
            tickers=list(classes),
            classes=set(classes.values()),
            clock=clock,
            info=RunInfo(self.mode, self.venue, datetime.now(UTC)),  # type: ignore[arg-type]
            jobs=self.jobs,
        )
        self._settings = settings
        return self.parts.app

    def deliver(self, close: Any) -> bool:
        """False when the close's feed is stopped; else its bars go on the tape."""
        if self.parts is None:
            return True
        if not self.parts.switch.running(close.asset_class):
            return False
        for bar in close.bars.values():
            self.parts.tape.record_bar(bar)
        return True

    def start_panel(self, api_url: str) -> None:
        """``python -m app panel`` over the API, presenting the API's first key (a one-time
        key generated on loopback included) unless APP_UI__API_KEY is set."""
        if not self.panel or self.parts is None:
            return
        api = self._settings.api
        key = (api.keys or api.read_keys)[0].get_secret_value()
        self.process = PanelProcess(
            api_url, key, port=self.panel_port, config=self.config, announce=self.announce
        )
        self.process.start()

    def stop(self) -> dict[str, str]:
        """End the panel and the local jobs; the panel's URL for the summary."""
        urls: dict[str, str] = {}
        if self.process is not None:
            urls["panel"] = self.process.url or "did not start"
            self.process.stop()
        if self.jobs is not None:
            self.jobs.close()
        return urls
