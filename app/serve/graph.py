"""The Serve graph of the live loop: FastAPI ingress -> Model -> Risk -> the execution actor.

``build_app(settings, ...) -> Application`` (the worker's way in) and ``app_builder(args)``
(``serve deploy serve_config.yaml``: Serve calls it with the config's ``args``).

- ``LiveIngress`` (one replica: one account) serves the API of ``app.serve.api.build_api`` over
  its ``MemoryLiveView`` and runs each bar close (``on_close`` / ``on_bar_close``, called by the
  feed actors through the app handle) as a ``StagedSession`` step: the execution actor's
  ``on_bars`` and the Model deployment together, then the Risk deployment's ``decide_bar``,
  then the execution actor's ``execute``: two or three hops per bar close, whatever the number
  of tickers. Signals are kept in the view; GETs read memory and never call the model.
- ``ModelDeployment`` and ``RiskDeployment``: ``app/serve/deployments.py``.
- The execution actor (``app/actors/execution.py``) is created by the ingress on its own node
  (the journal and the paper state are files in ``state_dir`` there) and shares its fate.

Only frozen dataclasses and domain types travel between them (``app/live/stages.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from app.actors.execution import EXECUTION_ACTOR_OPTIONS, ExecutionActor, ExecutionConfig
from app.clock import ReplayClock, WallClock
from app.config import Settings
from app.errors import InputError
from app.live.staged import StagedSession
from app.live.stages import RiskCommand, RiskStatus
from app.models import registry
from app.serve.deployments import (
    REPLICA_OPTIONS,
    ModelDeployment,
    RiskDeployment,
    ServedModel,
    StepSummary,
)
from app.serve.memory import MemoryLiveView
from app.serve.view import Promotion
from app.types import BAR_INTERVAL, AssetClass

MAX_ERRORS = 100


class Remote:
    """A Ray actor or Serve handle whose method calls return awaitables (``StagedSession``'s
    stages): ``Remote(h).decide_bar(req)`` is ``h.decide_bar.remote(req)``."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._handle, name)
        return lambda *a, **kw: method.remote(*a, **kw)


class _GraphView(MemoryLiveView):
    """The view over a risk engine that lives in the Risk deployment: reads use a mirror
    refreshed from every status; commands go to the deployment through the session."""

    session: StagedSession

    def set_status(self, status: RiskStatus) -> None:
        with self._lock:
            self.engine = status.engine(self.engine.settings)

    async def halt(self, reason: str):  # type: ignore[no-untyped-def]  # noqa: ANN201
        return await self._remote(RiskCommand("halt", reason=reason))

    async def resume(self):  # type: ignore[no-untyped-def]  # noqa: ANN201
        return await self._remote(RiskCommand("resume"))

    async def set_reducing(self, on: bool):  # type: ignore[no-untyped-def]  # noqa: ANN201
        return await self._remote(RiskCommand("reducing", on=on))

    async def _remote(self, cmd: RiskCommand):  # type: ignore[no-untyped-def]  # noqa: ANN202
        await self.session.command(cmd)  # refreshes the mirror through on_status
        return self._risk_command(lambda _engine: None)  # the risk event, the answer


@serve.deployment(num_replicas=1, max_ongoing_requests=512, ray_actor_options=REPLICA_OPTIONS)
@serve.ingress()
class LiveIngress:
    """The API and the bar-close driver of one account."""

    async def __init__(
        self,
        model: DeploymentHandle,
        risk: DeploymentHandle,
        settings: Settings,
        asset_classes: Mapping[str, AssetClass],
        calendar: AssetClass,
        state_dir: str,
        version: str,
        replay_start: datetime | None = None,
        initial_equity: float = 100_000.0,
        trade_from: datetime | None = None,
    ) -> None:
        self.settings = settings
        self.trade_from = trade_from
        self.errors: list[str] = []
        self.skipped = 0
        self.clock = ReplayClock(replay_start) if replay_start is not None else WallClock()
        model, risk = _direct(model), _direct(risk)
        status: RiskStatus = await risk.status.remote()
        config = ExecutionConfig(
            state_dir, AssetClass(calendar), dict(asset_classes),
            initial_equity=initial_equity, replay_start=replay_start,
        )  # fmt: skip
        self.execution = _execution_actor(config, settings)
        self.view = _GraphView(
            clock=self.clock,
            engine=status.engine(settings.risk),
            registry_dir=settings.registry_dir,
            tickers=list(asset_classes),
            api=settings.api,
            initial_equity=initial_equity,
            calendar=calendar,
        )
        self.session = StagedSession(
            model=ServedModel(model, Path(settings.registry_dir), version, calendar),
            risk=Remote(risk),
            execution=Remote(self.execution),
            asset_classes=asset_classes,
            calendar=calendar,
            clock=self.clock,
            view=self.view,
            stale_bars=settings.api.signal_stale_bars,
            source="serve",
            on_status=self.view.set_status,
        )
        self.view.session = self.session
        await self.session.start()

    def __serve_build_asgi_app__(self):  # type: ignore[no-untyped-def]  # noqa: N807
        from app.serve.api import build_api

        return build_api(self.view, self.settings)

    async def on_bar_close(self, closed: Any) -> StepSummary | None:
        """One bar close through model -> risk -> execution (None: a warm-up bar before
        ``trade_from``, or a close already processed: a restarted feed sends it again)."""
        ts = closed.ts
        last = self.session.last_ts
        if (self.trade_from is not None and ts < self.trade_from) or (
            last is not None and ts <= last
        ):
            self.skipped += 1
            return None
        if isinstance(self.clock, ReplayClock):
            self.clock.advance_to(ts + BAR_INTERVAL)
        step = await self.session.on_bar_close(closed)
        return StepSummary(
            step.ts,
            len(step.signals),
            len(step.decisions),
            len(step.fills),
            step.equity,
            self.session.model.version,
        )

    async def on_close(self, closed: Any) -> StepSummary | None:
        """The feed actors' sink: ``on_bar_close``, one bad bar counted, never fatal."""
        try:
            return await self.on_bar_close(closed)
        except Exception as exc:  # noqa: BLE001 - reported in the summary, the loop goes on
            if len(self.errors) < MAX_ERRORS:
                self.errors.append(f"{closed.ts.isoformat()}: {type(exc).__name__}: {exc}")
            return None

    async def promote(self, version: str) -> Promotion:
        """What ``POST /v1/models/promote`` does (the registry pointer, the view's model list,
        the stream's event), for the worker's ``--retrain-every`` hook; the bar after it asks
        the Model deployment for that version."""
        return await self.view.promote(version)

    async def flatten(self, reason: str) -> int:
        """The kill switch's flatten, sent now (--flatten-on-exit); returns the orders sent."""
        return await self.session.flatten(reason)

    async def fill_rows(self) -> list[tuple]:
        return await self.session.fill_rows()

    async def records(self):  # type: ignore[no-untyped-def]  # noqa: ANN201
        return self.session.records

    async def report(self) -> dict[str, Any]:
        status = self.session.status
        return {
            "errors": list(self.errors),
            "skipped": self.skipped,
            "risk_state": status.state.value if status is not None else None,
            "model_version": self.session.model.version,
        }

    async def stop(self) -> None:
        await self.session.stop()


def _direct(handle: DeploymentHandle) -> DeploymentHandle:
    """``handle`` calling its replicas over Serve's inter-deployment gRPC, not through a Ray
    object reference per call (with REPLICA_OPTIONS, a bar close's p50 ~22 ms against ~28 ms:
    docs/BENCHMARKS.md)."""
    return handle.options(_by_reference=False)


def _execution_actor(config: ExecutionConfig, settings: Settings) -> Any:
    """The account's execution actor on this replica's node (one per app: named after it)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    name = f"seed-trader-execution-{serve.get_replica_context().app_name}"
    node = ray.get_runtime_context().get_node_id()
    return (
        ray.remote(ExecutionActor)
        .options(
            name=name,
            get_if_exists=True,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            **EXECUTION_ACTOR_OPTIONS,
        )
        .remote(config, settings)
    )


def build_app(
    settings: Settings,
    *,
    asset_classes: Mapping[str, AssetClass],
    calendar: AssetClass,
    state_dir: str | Path,
    replay_start: datetime | None = None,
    initial_equity: float = 100_000.0,
    model_replicas: int = 1,
    trade_from: datetime | None = None,
) -> Application:
    """The live graph of one account trading ``calendar``'s asset class, over that class's
    promoted model version (``InputError`` when none is). ``settings.api`` must already hold
    keys (``app.serve.auth.resolve_keys``)."""
    version = registry.promoted_version(settings.registry_dir, "price", calendar)
    if version is None:
        cls = AssetClass(calendar).value
        raise InputError(f"no promoted model for {cls} in {settings.registry_dir}")
    if not asset_classes:
        raise InputError("asset_classes: no ticker to trade")
    state = Path(state_dir)
    model = ModelDeployment.options(
        num_replicas=model_replicas, user_config={"version": version}
    ).bind(str(settings.registry_dir))
    risk = RiskDeployment.bind(settings.risk, str(state / "risk_state.json"))
    return LiveIngress.bind(
        model,
        risk,
        settings,
        dict(asset_classes),
        AssetClass(calendar),
        str(state),
        version,
        replay_start,
        initial_equity,
        trade_from,
    )


class GraphArgs(BaseModel):
    """The ``args`` of serve_config.yaml (``serve deploy``): what ``build_app`` needs beyond
    the settings, which come from the environment (``APP_*``) and ``config`` (a TOML file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: str = Field(min_length=1)
    calendar: AssetClass
    model_replicas: int = Field(default=1, ge=1, le=64)
    tickers: tuple[str, ...] = ()  # default: the configured universe of ``calendar``
    initial_equity: float = Field(default=100_000.0, gt=0)
    config: str | None = None  # a settings TOML on the node


def parse_args(args: Mapping[str, Any]) -> GraphArgs:
    """``args`` -> ``GraphArgs``; ``InputError`` naming each bad field."""
    if not isinstance(args, Mapping):
        raise InputError(f"serve args: expected a mapping, got {type(args).__name__}")
    try:
        return GraphArgs.model_validate(dict(args))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(args)'}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        )
        raise InputError(f"serve args: {problems}") from None


def app_builder(args: dict[str, Any]) -> Application:
    """``serve deploy``'s builder: the settings from the environment (keys included: a
    non-loopback API without keys is refused by ``resolve_keys``), the rest from ``args``."""
    from app.config import load_settings
    from app.serve.auth import resolve_keys

    parsed = parse_args(args)
    settings = load_settings(Path(parsed.config)) if parsed.config else load_settings()
    settings = resolve_keys(settings)
    universe = {a.symbol: AssetClass(a.asset_class) for a in settings.universe}
    if parsed.tickers:
        unknown = [t for t in parsed.tickers if t not in universe]
        if unknown:
            raise InputError(f"serve args: tickers={unknown!r}: not in the configured universe")
        classes = {t: universe[t] for t in parsed.tickers}
    else:
        classes = {t: c for t, c in universe.items() if c is parsed.calendar}
    if not classes:
        raise InputError(f"serve args: calendar={parsed.calendar.value!r}: no ticker of that class")
    return build_app(
        settings,
        asset_classes=classes,
        calendar=parsed.calendar,
        state_dir=parsed.state_dir,
        initial_equity=parsed.initial_equity,
        model_replicas=parsed.model_replicas,
    )
