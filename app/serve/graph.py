"""``build_app(settings, ...) -> Application``: the Serve graph of the live loop.

HTTP ingress (FastAPI, ``app.serve.api``) -> Model deployment (batched, versioned) ; the
ingress replica (one) holds the ``TradingSession`` with the deterministic risk engine and the
``ExecutionEngine`` (paper by default), and persists the risk engine's state
(``RiskEngine.to_state``) after every bar's decisions and every operator command, so a restarted
replica continues from it. The feed calls ``on_bar_close`` through the app handle; API reads
come from the replica's memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from app.clock import ReplayClock, WallClock
from app.config import Settings
from app.errors import InputError
from app.live.session import ClosedBars, TradingSession
from app.models import registry
from app.risk.engine import RiskEngine
from app.serve.deployments import ModelDeployment, ServedModel, StepSummary
from app.types import BAR_INTERVAL, AssetClass


def _risk_engine(settings: Settings, path: Path) -> RiskEngine:
    if path.exists():
        return RiskEngine.from_state(settings.risk, json.loads(path.read_text()))
    return RiskEngine(settings.risk)


@serve.deployment(num_replicas=1, max_ongoing_requests=512, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class LiveIngress:
    """The API and the session of one account (one replica: one account, one risk engine)."""

    async def __init__(
        self,
        model: DeploymentHandle,
        settings: Settings,
        asset_classes: Mapping[str, AssetClass],
        calendar: AssetClass,
        state_dir: str,
        version: str,
        replay_start: object | None = None,
        initial_equity: float = 100_000.0,
    ) -> None:
        self._setup(
            model, settings, asset_classes, calendar, state_dir, version, replay_start,
            initial_equity,
        )  # fmt: skip
        await self.session.start()

    def _setup(
        self,
        model: DeploymentHandle,
        settings: Settings,
        asset_classes: Mapping[str, AssetClass],
        calendar: AssetClass,
        state_dir: str,
        version: str,
        replay_start: object | None,
        initial_equity: float,
    ) -> None:
        import os

        from app.broker.execution import open_engine
        from app.serve.memory import MemoryLiveView
        from app.store import DuckDBStore

        self.settings = settings
        folder = Path(state_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.risk_path = folder / "risk_state.json"
        self.clock = ReplayClock(replay_start) if replay_start is not None else WallClock()
        risk = _risk_engine(settings, self.risk_path)
        self.store = DuckDBStore(folder / "journal.db")
        execution = open_engine(
            "paper",
            settings,
            os.environ,
            risk,
            self.store,
            calendar=calendar,
            clock=self.clock.now,
            asset_classes=asset_classes,
            state_path=folder / "paper_state.json",
            initial_cash=initial_equity,
        )
        self.view = MemoryLiveView(
            clock=self.clock,
            engine=risk,
            registry_dir=settings.registry_dir,
            tickers=list(asset_classes),
            api=settings.api,
            initial_equity=initial_equity,
            calendar=calendar,
            on_risk_change=self._persist,
        )
        served = ServedModel(model, Path(settings.registry_dir), version)
        self.session = TradingSession(
            model=served,
            risk=risk,
            execution=execution,
            asset_classes=asset_classes,
            calendar=calendar,
            clock=self.clock,
            view=self.view,
            stale_bars=settings.api.signal_stale_bars,
            source="serve",
            fill_book=execution.broker.pf,  # type: ignore[attr-defined]  # paper
            on_risk_change=self._persist,
        )

    def __serve_build_asgi_app__(self):  # type: ignore[no-untyped-def]  # noqa: N807
        from app.serve.api import build_api

        return build_api(self.view, self.settings)

    def _persist(self, engine: RiskEngine) -> None:
        tmp = self.risk_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(engine.to_state(), default=str))
        tmp.replace(self.risk_path)

    async def on_bar_close(self, closed: ClosedBars) -> StepSummary:
        """One bar close through model -> risk -> execution; the signals land in the view."""
        if isinstance(self.clock, ReplayClock):
            self.clock.advance_to(closed.ts + BAR_INTERVAL)
        step = await self.session.on_bar_close(closed)
        self._persist(self.session.risk)
        return StepSummary(
            step.ts,
            len(step.signals),
            len(step.decisions),
            len(step.fills),
            step.equity,
            self.session.model.version,
        )

    async def fill_rows(self) -> list[tuple]:
        return self.session.fill_rows()

    async def records(self):  # type: ignore[no-untyped-def]
        return self.session.records


def build_app(
    settings: Settings,
    *,
    asset_classes: Mapping[str, AssetClass],
    calendar: AssetClass,
    state_dir: str | Path,
    replay_start: object | None = None,
    initial_equity: float = 100_000.0,
    model_replicas: int = 1,
) -> Application:
    """The live graph over the promoted model version (``InputError`` when none is).
    ``settings.api`` must already hold keys (``app.serve.auth.resolve_keys``)."""
    version = registry.promoted_version(settings.registry_dir)
    if version is None:
        raise InputError(f"no promoted model in {settings.registry_dir}")
    model = ModelDeployment.options(
        num_replicas=model_replicas, user_config={"version": version}
    ).bind(str(settings.registry_dir))
    return LiveIngress.bind(
        model,
        settings,
        dict(asset_classes),
        AssetClass(calendar),
        str(state_dir),
        version,
        replay_start,
        initial_equity,
    )
