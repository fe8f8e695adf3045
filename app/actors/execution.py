"""``ExecutionActor``: the account's ``ExecutionEngine`` (``open_engine``, paper by default) as a
Ray actor, behind the three calls of a bar close (``app.live.stages.ExecutionStage``).

An async actor (the engine is asyncio code); the graph's ingress creates it next to itself
(same node: the journal and the paper state are files there) and awaits one call at a time.
Created with ``EXECUTION_ACTOR_OPTIONS``: after a crash Ray starts it again, and the first call
on the new process runs ``ExecutionEngine.start`` (rebuild from the journal, reconcile with the
venue) before anything else. A call interrupted by the crash is not retried (the ingress
counts it as that bar's error); an order sent twice would be caught by its deterministic id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.broker.execution import open_engine
from app.clock import ReplayClock
from app.config import Settings
from app.live.stages import ExecutionReply, ExecutionStage, RiskStatus
from app.risk.engine import RiskEngine
from app.types import AssetClass, Bar, RiskDecision

EXECUTION_ACTOR_OPTIONS: dict[str, Any] = {
    "max_restarts": -1,
    "max_task_retries": 0,
    "max_concurrency": 4,
    "num_cpus": 0,
}


@dataclass(frozen=True)
class ExecutionConfig:
    """Where the account lives and on which venue (``open_engine``'s arguments)."""

    state_dir: str  # journal.db and paper_state.json
    calendar: AssetClass
    asset_classes: Mapping[str, AssetClass] = field(default_factory=dict)
    venue: str = "paper"
    live: bool = False
    testnet: bool = False
    venue_url: str = ""
    initial_equity: float = 100_000.0
    replay_start: datetime | None = None  # a replay: the engine's clock follows the bars


class ExecutionActor:
    """Lifecycle and messaging around ``ExecutionStage``; no logic of its own."""

    def __init__(self, config: ExecutionConfig, settings: Settings) -> None:
        from app.clock import WallClock
        from app.store import DuckDBStore

        folder = Path(config.state_dir)
        folder.mkdir(parents=True, exist_ok=True)
        clock = ReplayClock(config.replay_start) if config.replay_start else WallClock()
        self.store = DuckDBStore(folder / "journal.db")
        engine = open_engine(
            config.venue,
            settings,
            os.environ,
            RiskEngine(settings.risk),  # a mirror: each call brings the risk stage's status
            self.store,
            calendar=AssetClass(config.calendar),
            clock=clock.now,
            live=config.live,
            testnet=config.testnet,
            venue_url=config.venue_url,
            asset_classes=dict(config.asset_classes),
            state_path=folder / "paper_state.json",
            journal_log=folder / "journal.log",
            initial_cash=config.initial_equity,
        )
        on_time = clock.advance_to if isinstance(clock, ReplayClock) else None
        self.stage = ExecutionStage(
            engine, settings.risk, fill_book=getattr(engine.broker, "pf", None), on_time=on_time
        )

    async def start(self, status: RiskStatus) -> ExecutionReply:
        return await self.stage.start(status)

    async def on_bars(self, bars: Sequence[Bar], now: datetime, status: RiskStatus):  # noqa: ANN201
        return await self.stage.on_bars(bars, now, status)

    async def execute(self, decisions: Sequence[RiskDecision], status: RiskStatus):  # noqa: ANN201
        return await self.stage.execute(decisions, status)

    async def fill_rows(self) -> list[tuple]:
        return self.stage.fill_rows()

    async def stop(self) -> None:
        await self.stage.stop()
        self.store.close()
