"""Ray Serve deployments of the signal graph: thin shells over plain classes tested without Ray.

- ``ModelServer`` (plain) / ``ModelDeployment``: serves registry versions; ``@serve.batch``
  gathers the per-ticker requests of one bar close (and of concurrent callers) into one forward
  pass. Each ``TickerWindow`` names the version it wants, so every ticker of a bar is scored by
  the same version and a promotion applies from the next bar on; versions load on first use
  and the last few stay cached. ``reconfigure`` (the deployment's ``user_config``) preloads a
  version in place on running replicas: no restart, no dropped request.
  A bar close is one ``BarWindows`` request (every ticker's window): one hop per bar close, and
  concurrent bar closes (several asset classes) share a forward pass.
- ``RiskDeployment`` (one replica): ``app.live.stages.RiskStage``, the deterministic engine of
  the account; its state is written after every bar's decisions and every command.
- The ingress (``app/serve/graph.py``) and the execution actor (``app/actors/execution.py``).

Everything sent between them is a frozen dataclass or a domain type.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from app.config import RiskSettings
from app.live.model import SignalModel, signal_of
from app.live.stages import RiskCommand, RiskReply, RiskRequest, RiskStage, RiskStatus
from app.models import registry
from app.types import AssetClass, Signal

CACHED_VERSIONS = 3
# The replicas run their handlers on the replica's own event loop, not on a second loop in a
# thread (Serve's default), and call other deployments from it: fewer thread hops per call.
# The handlers are short (the forward pass runs in a worker thread). Both are part of Serve's
# RAY_SERVE_THROUGHPUT_OPTIMIZED mode (its direct ingress is not used: the API stays on the
# proxy's port).
REPLICA_OPTIONS: dict[str, Any] = {
    "num_cpus": 0,
    "runtime_env": {
        "env_vars": {
            "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
            "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
        }
    },
}


@dataclass(frozen=True, slots=True)
class TickerWindow:
    """One ticker's raw window at one bar close, and the model version to score it with."""

    ticker: str
    ts: datetime  # open time of the bar
    window: np.ndarray  # (lookback, features), raw
    version: str


@dataclass(frozen=True, slots=True)
class BarWindows:
    """Every ticker's raw window at one bar close, and the model version to score them with."""

    ts: datetime  # open time of the bar
    windows: tuple[tuple[str, np.ndarray], ...]  # (ticker, (lookback, features)) in bar order
    version: str

    def requests(self) -> list[TickerWindow]:
        return [TickerWindow(t, self.ts, w, self.version) for t, w in self.windows]


@dataclass(frozen=True, slots=True)
class StepSummary:
    """What ``LiveIngress.on_bar_close`` did with one bar close."""

    ts: datetime
    signals: int
    decisions: int
    fills: int
    equity: float
    model_version: str


class ModelServer:
    """Registry versions by name, loaded on first use, the last few cached."""

    def __init__(self, registry_dir: str | Path) -> None:
        self.registry_dir = Path(registry_dir)
        self._models: OrderedDict[str, SignalModel] = OrderedDict()

    def reconfigure(self, config: Mapping[str, Any]) -> None:
        """``{"version": V}``: load V now (a promotion's warm-up); unknown keys are refused."""
        unknown = set(config) - {"version"}
        if unknown:
            raise ValueError(f"ModelDeployment user_config: unknown keys {sorted(unknown)}")
        if config.get("version"):
            self.model(str(config["version"]))

    def model(self, version: str) -> SignalModel:
        held = self._models.get(version)
        if held is None:
            held = SignalModel.load(self.registry_dir, version)
            self._models[version] = held
            while len(self._models) > CACHED_VERSIONS:
                self._models.popitem(last=False)
        self._models.move_to_end(version)
        return held

    def predict(self, requests: list[TickerWindow]) -> list[Signal]:
        """One forward pass per version present in ``requests``; answers in request order."""
        out: list[Signal | None] = [None] * len(requests)
        by_version: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            by_version.setdefault(r.version, []).append(i)
        for version, idx in by_version.items():
            model = self.model(version)
            x = np.stack([np.asarray(requests[i].window, dtype=np.float64) for i in idx])
            ids = model.bundle.ticker_ids([requests[i].ticker for i in idx])
            probs = model.bundle.predict_proba(x, ids)
            for k, i in enumerate(idx):
                out[i] = signal_of(requests[i].ticker, requests[i].ts, probs[k], version)
        return out  # type: ignore[return-value]

    def predict_bars(self, bars: list[BarWindows]) -> list[tuple[Signal, ...]]:
        """``predict`` over every window of ``bars`` at once; one tuple per bar, in order."""
        flat = [r for b in bars for r in b.requests()]
        answers = iter(self.predict(flat))
        return [tuple(next(answers) for _ in b.windows) for b in bars]


@serve.deployment(max_ongoing_requests=256, ray_actor_options=REPLICA_OPTIONS)
class ModelDeployment(ModelServer):
    """The Model deployment (batched over tickers and callers)."""

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002)
    async def signal(self, requests: list[TickerWindow]) -> list[Signal]:
        return await asyncio.to_thread(self.predict, requests)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.001)
    async def bar_signals(self, bars: list[BarWindows]) -> list[tuple[Signal, ...]]:
        return await asyncio.to_thread(self.predict_bars, bars)


@serve.deployment(num_replicas=1, max_ongoing_requests=64, ray_actor_options=REPLICA_OPTIONS)
class RiskDeployment:
    """The Risk deployment: one replica, one account's deterministic engine. Its methods do
    not await, so a bar's decisions and an operator command never interleave."""

    def __init__(self, settings: RiskSettings, state_path: str) -> None:
        self.stage = RiskStage(settings, state_path)

    async def status(self) -> RiskStatus:
        return self.stage.status()

    async def decide_bar(self, req: RiskRequest) -> RiskReply:
        return self.stage.decide_bar(req)

    async def command(self, cmd: RiskCommand) -> RiskStatus:
        return self.stage.command(cmd)


class ServedModel:
    """The ``SignalSource`` the session awaits: one request per bar close to the Model
    deployment, the version read from the registry pointer of the account's asset class once
    per bar (a promotion applies from the next bar on)."""

    def __init__(
        self, handle: DeploymentHandle, registry_dir: Path, version: str, asset_class: AssetClass
    ) -> None:
        self.handle = handle
        self.registry_dir = registry_dir
        self.version = version
        self.asset_class = AssetClass(asset_class)

    async def signals(self, ts: datetime, windows: Mapping[str, np.ndarray]) -> dict[str, Signal]:
        promoted = registry.promoted_version(self.registry_dir, "price", self.asset_class)
        self.version = promoted or self.version
        if not windows:
            return {}
        answers = await self.handle.bar_signals.remote(
            BarWindows(ts, tuple(windows.items()), self.version)
        )
        return {s.ticker: s for s in answers}


def user_config_json(version: str) -> str:
    return json.dumps({"version": version})
