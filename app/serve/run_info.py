"""``GET /v1/run``: whether this run trades paper or live, on which venue, since when.

The control panel shows it as a badge that cannot be missed; the v1 API proper does not carry
it. Mount beside the v1 routes (same auth): ``api.include_router(run_router(info))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from app.serve.auth import READ
from app.types import require_utc

Mode = Literal["paper", "live"]


@dataclass(frozen=True, slots=True)
class RunInfo:
    mode: Mode
    venue: str
    started_at: datetime

    def __post_init__(self) -> None:
        if self.mode not in ("paper", "live"):
            raise ValueError(f"RunInfo.mode={self.mode!r}: expected 'paper' or 'live'")
        require_utc("RunInfo", "started_at", self.started_at)


class RunOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: Mode
    venue: str
    started_at: datetime


def run_router(info: RunInfo) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[READ], tags=["ops"])

    @router.get("/run")
    async def run() -> RunOut:
        """Paper or live, the venue, and when the worker started."""
        return RunOut(mode=info.mode, venue=info.venue, started_at=info.started_at)

    return router
