"""Ray Serve deployments of the signal graph: thin shells over plain classes tested without Ray.

- ``ModelServer`` (plain) / ``ModelDeployment``: serves registry versions; ``@serve.batch``
  gathers the per-ticker requests of one bar close (and of concurrent callers) into one forward
  pass. Each ``TickerWindow`` names the version it wants, so every ticker of a bar is scored by
  the same version and a promotion applies from the next bar on; versions load on first use
  and the last few stay cached. ``reconfigure`` (the deployment's ``user_config``) preloads a
  version in place on running replicas: no restart, no dropped request.
- ``LiveIngress``: the FastAPI app of ``app.serve.api.build_api`` (built in the replica, after
  the constructor, through ``__serve_build_asgi_app__``) over the replica's ``MemoryLiveView``,
  plus ``on_bar_close`` which the feed calls: the ``TradingSession`` step with the model
  answered by the Model deployment. GETs read the view's memory; they never call the model.

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

from app.live.model import SignalModel, signal_of
from app.models import registry
from app.types import Signal

CACHED_VERSIONS = 3


@dataclass(frozen=True, slots=True)
class TickerWindow:
    """One ticker's raw window at one bar close, and the model version to score it with."""

    ticker: str
    ts: datetime  # open time of the bar
    window: np.ndarray  # (lookback, features), raw
    version: str


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


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
class ModelDeployment(ModelServer):
    """The Model deployment (batched over tickers and callers)."""

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002)
    async def signal(self, requests: list[TickerWindow]) -> list[Signal]:
        return await asyncio.to_thread(self.predict, requests)


class ServedModel:
    """The ``SignalSource`` the session awaits: one request per ticker to the Model deployment
    (batched there), the version read from the registry pointer once per bar."""

    def __init__(self, handle: DeploymentHandle, registry_dir: Path, version: str) -> None:
        self.handle = handle
        self.registry_dir = registry_dir
        self.version = version

    async def signals(self, ts: datetime, windows: Mapping[str, np.ndarray]) -> dict[str, Signal]:
        version = registry.promoted_version(self.registry_dir) or self.version
        self.version = version
        calls = [
            self.handle.signal.remote(TickerWindow(t, ts, w, version)) for t, w in windows.items()
        ]
        answers = await asyncio.gather(*calls)
        return {s.ticker: s for s in answers}


def user_config_json(version: str) -> str:
    return json.dumps({"version": version})
