"""Research jobs started from the API: ``POST /v1/jobs`` and ``GET /v1/jobs/{id}``.

The operator starts a walk-forward (on the data the worker trades) from the control panel and
follows it. The command is built here, server side, from a fixed list of kinds: a request picks
a kind, never an argv. Two runners:

- ``RayJobRunner``: a Ray job (``ray.job_submission.JobSubmissionClient``) on the cluster whose
  dashboard address is configured; the entrypoint runs where the cluster's nodes run the same
  code and see the same paths (the image of docs/DEPLOY, or ``ray job submit --working-dir``).
- ``LocalJobRunner``: without a cluster, the same command as a subprocess of the worker, its
  stdout and stderr in ``<jobs_dir>/<id>.log``; the worker ends it on exit.

One job at a time (a second one while it runs: 409): a walk-forward takes the machine's CPUs.
``GET`` answers the status, the log's last lines, the report's path once it exists, and the
summary the command printed last (its final JSON line) when it succeeded.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict

from app.serve.auth import OPERATE, READ

JobStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED"]
FINISHED = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
JOB_ID_PATTERN = r"^[a-z]+-[0-9]{8}T[0-9]{6}-[0-9a-f]{6}$"
TAIL_LINES = 30
JobId = Annotated[str, PathParam(pattern=JOB_ID_PATTERN, description="from POST /v1/jobs")]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What to run: the argv (argv[0] is the interpreter) and where its report will be."""

    kind: str
    argv: tuple[str, ...]
    report: Path | None = None


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: str
    kind: str
    runner: str  # ray | local
    status: JobStatus
    submitted_at: datetime
    entrypoint: str
    log_tail: tuple[str, ...] = ()
    report: str | None = None
    summary: Mapping[str, Any] | None = None
    message: str = ""


class JobRunner(Protocol):
    name: str

    def submit(self, job_id: str, spec: JobSpec) -> None: ...
    def status(self, job_id: str) -> tuple[JobStatus, str]: ...  # status, message
    def logs(self, job_id: str) -> str: ...
    def close(self) -> None: ...


class LocalJobRunner:
    """The command as a subprocess of this process, its output in ``jobs_dir/<id>.log``."""

    name = "local"

    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = Path(jobs_dir)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def _log(self, job_id: str) -> Path:
        return self.jobs_dir / f"{job_id}.log"

    def submit(self, job_id: str, spec: JobSpec) -> None:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        with self._log(job_id).open("wb") as log:
            self._procs[job_id] = subprocess.Popen(  # noqa: S603 - argv built server side
                list(spec.argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def status(self, job_id: str) -> tuple[JobStatus, str]:
        code = self._procs[job_id].poll()
        if code is None:
            return "RUNNING", ""
        if code == 0:
            return "SUCCEEDED", ""
        return ("STOPPED", "ended by the worker") if code < 0 else ("FAILED", f"exit code {code}")

    def logs(self, job_id: str) -> str:
        path = self._log(job_id)
        if not path.exists():
            return ""
        with path.open("rb") as f:  # the tail only: a walk-forward logs a lot
            f.seek(max(path.stat().st_size - 64_000, 0))
            return f.read().decode("utf-8", "replace")

    def close(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class RayJobRunner:
    """A Ray job on the cluster at ``address`` (its dashboard, e.g. ``http://127.0.0.1:8265``)."""

    name = "ray"

    def __init__(self, address: str) -> None:
        from ray.job_submission import JobSubmissionClient

        self.client = JobSubmissionClient(address)

    def submit(self, job_id: str, spec: JobSpec) -> None:
        entrypoint = shlex.join(["python", *spec.argv[1:]])  # the cluster's interpreter
        self.client.submit_job(entrypoint=entrypoint, submission_id=job_id)

    def status(self, job_id: str) -> tuple[JobStatus, str]:
        info = self.client.get_job_info(job_id)
        status = getattr(info.status, "value", info.status)  # JobStatus, a str enum
        return str(status), info.message or ""  # type: ignore[return-value]

    def logs(self, job_id: str) -> str:
        return self.client.get_job_logs(job_id)

    def close(self) -> None:  # a cluster's jobs outlive the worker that submitted them
        return None


class JobBusy(RuntimeError):
    """A job is running already."""


class JobBoard:
    """The jobs this worker started; ``kinds`` maps a kind to its spec for a job id."""

    def __init__(
        self,
        runner: JobRunner,
        kinds: Mapping[str, Callable[[str], JobSpec]],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not kinds:
            raise ValueError("JobBoard: no job kind")
        self.runner = runner
        self.kinds = dict(kinds)
        self._now = now
        self._jobs: dict[str, JobInfo] = {}
        self._specs: dict[str, JobSpec] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str) -> JobInfo:
        if kind not in self.kinds:
            raise KeyError(kind)
        with self._lock:
            for job_id in self._jobs:
                if self._refresh(job_id).status not in FINISHED:
                    raise JobBusy(f"job {job_id} is still running; one job at a time")
            now = self._now()
            job_id = f"{kind}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
            spec = self.kinds[kind](job_id)
            self.runner.submit(job_id, spec)
            self._specs[job_id] = spec
            self._jobs[job_id] = JobInfo(
                job_id, kind, self.runner.name, "PENDING", now, shlex.join(spec.argv[1:])
            )
            return self._refresh(job_id)

    def get(self, job_id: str) -> JobInfo:
        with self._lock:
            if job_id not in self._jobs:
                raise KeyError(job_id)
            return self._refresh(job_id)

    def all(self) -> list[JobInfo]:
        with self._lock:
            return [self._refresh(j) for j in reversed(self._jobs)]

    def _refresh(self, job_id: str) -> JobInfo:
        held = self._jobs[job_id]
        if held.status in FINISHED:
            return held
        status, message = self.runner.status(job_id)
        lines = self.runner.logs(job_id).splitlines()
        spec = self._specs[job_id]
        report = str(spec.report) if spec.report is not None and spec.report.exists() else None
        info = replace(
            held,
            status=status,
            message=message,
            log_tail=tuple(lines[-TAIL_LINES:]),
            report=report,
            summary=_last_json(lines) if status == "SUCCEEDED" else None,
        )
        self._jobs[job_id] = info
        return info

    def close(self) -> None:
        self.runner.close()


def walkforward_kind(
    data: Path, jobs_dir: Path, registry_dir: Path, asset_class: str | None = None, folds: int = 2
) -> Callable[[str], JobSpec]:
    """The walk-forward of the data the worker trades (quick preset), its model registered
    (``--register``) so the panel lists it beside the served version, ready to promote."""

    def spec(job_id: str) -> JobSpec:
        out = Path(jobs_dir) / job_id
        argv = (sys.executable, "-m", "app", "walkforward", "--data", str(data), "--quick")
        argv += ("--folds", str(folds), "--register", "--registry", str(registry_dir))
        if asset_class is not None:
            argv += ("--asset-class", str(asset_class))
        return JobSpec("walkforward", (*argv, "--out", str(out)), out / "report.md")

    return spec


def _last_json(lines: list[str]) -> dict[str, Any] | None:
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = "walkforward"


class JobOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    runner: str
    status: JobStatus
    submitted_at: datetime
    entrypoint: str
    log_tail: list[str]
    report: str | None
    summary: dict[str, Any] | None
    message: str

    @classmethod
    def of(cls, j: JobInfo) -> JobOut:
        return cls(
            id=j.id,
            kind=j.kind,
            runner=j.runner,
            status=j.status,
            submitted_at=j.submitted_at,
            entrypoint=j.entrypoint,
            log_tail=list(j.log_tail),
            report=j.report,
            summary=dict(j.summary) if j.summary is not None else None,
            message=j.message,
        )


class JobsOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    kinds: list[str]
    jobs: list[JobOut]


def jobs_router(board: JobBoard) -> APIRouter:
    """``POST /v1/jobs`` (operate), ``GET /v1/jobs`` and ``GET /v1/jobs/{id}`` (read)."""
    router = APIRouter(prefix="/v1/jobs", dependencies=[READ], tags=["jobs"])

    @router.post(
        "",
        dependencies=[OPERATE],
        status_code=202,
        responses={409: {"description": "a job is running"}, 422: {"description": "kind"}},
    )
    async def submit(body: JobIn) -> JobOut:
        """Start a job of ``kind`` (see ``GET /v1/jobs`` for the kinds)."""
        try:
            return JobOut.of(await asyncio.to_thread(board.submit, body.kind))
        except KeyError:
            raise HTTPException(
                422, f"kind={body.kind!r}: expected one of {', '.join(sorted(board.kinds))}"
            ) from None
        except JobBusy as exc:
            raise HTTPException(409, str(exc)) from None

    @router.get("")
    async def jobs() -> JobsOut:
        """The kinds this worker can start, and its jobs, newest first."""
        return JobsOut(
            kinds=sorted(board.kinds),
            jobs=[JobOut.of(j) for j in await asyncio.to_thread(board.all)],
        )

    @router.get("/{job_id}", responses={404: {"description": "unknown job"}})
    async def job(job_id: JobId) -> JobOut:
        """A job's status, its log's last lines, its report once written."""
        try:
            return JobOut.of(await asyncio.to_thread(board.get, job_id))
        except KeyError:
            raise HTTPException(404, f"unknown job id={job_id!r}") from None

    return router
