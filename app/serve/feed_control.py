"""Stop and start a feed per asset class: ``POST /v1/feeds/{asset_class}/stop`` and ``/start``.

An operator stops a class's feed (a venue misbehaves, a data source sends garbage): the worker
keeps reading its source but hands no bar of that class to the trading session or the view,
so nothing is decided on it; its feed goes silent and, past ``api.feed_stale_s``, stale, which
puts the class in REDUCING by the staleness rule (docs/LIVE.md). Starting it again lets bars
flow, and the rule lifts REDUCING at the next bar. The switch is what the worker consults per
bar close; the router mounts beside the v1 routes (operate role for the commands):

    api.include_router(feed_control_router(switch))
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict

from app.clock import Clock
from app.serve.auth import OPERATE, READ
from app.types import AssetClass

FeedState = Literal["running", "stopped"]


class FeedSwitch:
    """Which asset classes' feeds run; thread-safe (the API's thread flips, the loop reads)."""

    def __init__(self, classes: Iterable[AssetClass], clock: Clock) -> None:
        self.classes = tuple(sorted({AssetClass(c) for c in classes}))
        if not self.classes:
            raise ValueError("FeedSwitch: no asset class")
        self._clock = clock
        self._stopped: dict[AssetClass, datetime] = {}
        self._lock = threading.Lock()

    def _known(self, asset_class: AssetClass) -> AssetClass:
        if asset_class not in self.classes:
            raise KeyError(asset_class)
        return asset_class

    def stop(self, asset_class: AssetClass) -> None:
        with self._lock:
            self._stopped.setdefault(self._known(asset_class), self._clock.now())

    def start(self, asset_class: AssetClass) -> None:
        with self._lock:
            self._stopped.pop(self._known(asset_class), None)

    def running(self, asset_class: AssetClass) -> bool:
        with self._lock:
            return asset_class not in self._stopped

    def state(self) -> dict[AssetClass, datetime | None]:
        """Class -> when it was stopped (None: running)."""
        with self._lock:
            return {c: self._stopped.get(c) for c in self.classes}


class FeedClassOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    asset_class: AssetClass
    state: FeedState
    stopped_at: datetime | None


class FeedControlOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    classes: list[FeedClassOut]


def _out(switch: FeedSwitch) -> FeedControlOut:
    return FeedControlOut(
        classes=[
            FeedClassOut(asset_class=c, state="running" if t is None else "stopped", stopped_at=t)
            for c, t in switch.state().items()
        ]
    )


def feed_control_router(switch: FeedSwitch) -> APIRouter:
    """``GET /v1/feeds/control`` (read), ``POST /v1/feeds/{asset_class}/stop|start`` (operate)."""
    router = APIRouter(prefix="/v1/feeds", dependencies=[READ], tags=["feeds"])
    unknown = {404: {"description": "an asset class this worker does not trade"}}

    def _flip(asset_class: AssetClass, run: bool) -> FeedControlOut:
        try:
            (switch.start if run else switch.stop)(asset_class)
        except KeyError:
            have = ", ".join(c.value for c in switch.classes)
            raise HTTPException(
                404, f"asset_class={asset_class.value!r}: this worker feeds {have} only"
            ) from None
        return _out(switch)

    @router.get("/control")
    async def control() -> FeedControlOut:
        """Each asset class's feed: running, or stopped since when."""
        return _out(switch)

    @router.post("/{asset_class}/stop", dependencies=[OPERATE], responses=unknown)
    async def stop(asset_class: AssetClass) -> FeedControlOut:
        """Stop handing this class's bars to the loop: it goes stale, then REDUCING."""
        return _flip(asset_class, run=False)

    @router.post("/{asset_class}/start", dependencies=[OPERATE], responses=unknown)
    async def start(asset_class: AssetClass) -> FeedControlOut:
        """Let this class's bars flow again (REDUCING lifts at the next bar)."""
        return _flip(asset_class, run=True)

    return router
