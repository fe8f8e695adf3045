"""POST /v1/jobs and GET /v1/jobs/{id} with the local runner: a real (tiny) command runs as a
subprocess; its status, log tail, report and final JSON line come back; one at a time. (The
walk-forward itself is too slow for a unit test: its argv is checked with the CLI's parser.)"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.cli.main import build_parser
from app.clock import ReplayClock
from app.serve.jobs import JobBoard, JobSpec, LocalJobRunner, walkforward_kind
from app.serve.run_info import RunInfo
from app.serve.worker_api import build_worker_api
from app.types import AssetClass
from tests.builders import T0
from tests.unit.serve.serve_builders import api_settings, fresh_keys, live_view

TINY = """
import json, pathlib, sys, time
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True)
for fold in range(3):
    print(f"fold {fold}: done", file=sys.stderr, flush=True); time.sleep(0.3)
(out / "report.md").write_text("# tiny report\\n")
print(json.dumps({"command": "tiny", "folds": 3}))
"""


def _tiny(tmp: Path):
    def spec(job_id: str) -> JobSpec:
        out = tmp / job_id
        return JobSpec("tiny", (sys.executable, "-c", TINY, str(out)), out / "report.md")

    return spec


def _failing(job_id: str) -> JobSpec:
    return JobSpec("fail", (sys.executable, "-c", "print('working'); raise SystemExit(3)"))


@pytest.fixture
def served(tmp_path: Path):
    keys = fresh_keys()
    settings = api_settings(tmp_path, keys)
    clock = ReplayClock(T0)
    view = live_view(settings, clock)
    board = JobBoard(LocalJobRunner(tmp_path / "jobs"), {"tiny": _tiny(tmp_path), "fail": _failing})
    parts = build_worker_api(
        view,
        settings,
        tickers=view.tickers(),
        classes=[AssetClass.CRYPTO],
        clock=clock,
        info=RunInfo("paper", "paper", T0),
        jobs=board,
    )
    yield TestClient(parts.app), keys
    board.close()


def _wait(client, keys, job_id: str, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}", headers=keys.ro()).json()
        if job["status"] in ("SUCCEEDED", "FAILED", "STOPPED") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_a_job_runs_and_reports(served) -> None:
    client, keys = served
    r = client.post("/v1/jobs", json={"kind": "tiny"}, headers=keys.op())
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["runner"] == "local" and job["status"] in ("PENDING", "RUNNING", "SUCCEEDED")
    assert job["entrypoint"].startswith("-c ")
    busy = client.post("/v1/jobs", json={"kind": "fail"}, headers=keys.op())
    if job["status"] != "SUCCEEDED":  # one at a time
        assert busy.status_code == 409 and "one job at a time" in busy.json()["detail"]
    done = _wait(client, keys, job["id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["report"].endswith("report.md") and Path(done["report"]).exists()
    assert done["summary"] == {"command": "tiny", "folds": 3}
    assert done["log_tail"][:3] == ["fold 0: done", "fold 1: done", "fold 2: done"]
    listed = client.get("/v1/jobs", headers=keys.ro()).json()
    assert listed["kinds"] == ["fail", "tiny"] and listed["jobs"][0]["id"] == job["id"]


def test_a_failing_job_and_bad_requests(served) -> None:
    client, keys = served
    job = client.post("/v1/jobs", json={"kind": "fail"}, headers=keys.op()).json()
    done = _wait(client, keys, job["id"])
    assert done["status"] == "FAILED" and done["message"] == "exit code 3"
    assert done["log_tail"] == ["working"] and done["summary"] is None
    assert client.post("/v1/jobs", json={"kind": "rm -rf"}, headers=keys.op()).status_code == 422
    assert client.post("/v1/jobs", json={"argv": ["x"]}, headers=keys.op()).status_code == 422
    assert client.post("/v1/jobs", json={"kind": "fail"}, headers=keys.ro()).status_code == 403
    assert client.get("/v1/jobs").status_code == 401
    assert client.get("/v1/jobs/fail-20250101T000000-abcdef", headers=keys.ro()).status_code == 404
    assert client.get("/v1/jobs/../etc", headers=keys.ro()).status_code == 404


def test_the_walkforward_kind_is_a_valid_command(tmp_path: Path) -> None:
    spec = walkforward_kind(tmp_path / "sim", tmp_path / "jobs", tmp_path / "reg", "crypto")("j")
    assert spec.argv[:3] == (sys.executable, "-m", "app")
    args = build_parser().parse_args(list(spec.argv[3:]))  # the CLI's own parser accepts it
    assert args.quick and args.register and args.folds == 2 and args.asset_class == "crypto"
    assert spec.report == tmp_path / "jobs" / "j" / "report.md"
