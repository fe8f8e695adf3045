"""A tiny sweep submitted as a Ray job to a loopback head started by this test.

`ray start --head` runs in its own process group with every port chosen free and a private
temp dir; the test stops exactly that group at the end (never `ray stop`, which would stop
every Ray instance of the user on a shared machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from app.sim.config import SimConfig
from app.sim.files import write_simulation
from app.sim.market import SimulatedMarket

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).parent / "ray"


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def ray_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
        HOME=str(tmp / "home"),  # keeps ~/.ray (auth token, logs) out of the real home
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        # SIGTERM stops the head at once: by default it drains for up to 30 s first (for Serve
        # replicas behind live proxies), which outlasted stop_group's 10 s wait before SIGKILL
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",
    )
    env.pop("RAY_ADDRESS", None)
    (tmp / "home").mkdir(exist_ok=True)
    return env


def wait_http(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"dashboard port {port} not listening after {timeout} s")


def stop_group(proc: subprocess.Popen, marker: str) -> None:
    """Stop the head's process group, then any straggler whose command line names our
    private temp dir (workers that left the group), by PID."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue
    time.sleep(1)
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmd = (pid_dir / "cmdline").read_bytes().decode(errors="ignore")
        except OSError:
            continue
        if marker in cmd and int(pid_dir.name) != os.getpid():
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.slow
@pytest.mark.timeout(780)
def test_tiny_sweep_runs_as_a_ray_job(tmp_path):
    sim = tmp_path / "sim"
    write_simulation(
        SimulatedMarket(SimConfig.for_symbols(["BTCUSDT"], days=5, news_per_day=2)).run(), sim
    )
    out = tmp_path / "out"
    config = tmp_path / "sweep.json"
    config.write_text(
        json.dumps(
            {
                "data": [str(sim)],
                "news": False,
                "folds": 2,
                "fold_indices": [1],
                "max_epochs": 2,
                "max_windows_per_epoch": 800,
                "max_concurrent": 2,
                "out": str(out),
                "register_best": True,
                "final_fit_workers": 2,
                "registry": str(tmp_path / "registry"),
                "verbose": 1,
                "search": {"lookback": [12], "d_model": [8, 16], "n_layers": [1]},
            }
        )
    )
    # short private path: Ray's unix sockets live under it (AF_UNIX paths max out at 107 bytes)
    ray_tmp = Path(tempfile.mkdtemp(prefix="rayjob-", dir="/tmp"))
    env = ray_env(tmp_path)
    gcs, dash, agent_http, agent_grpc, metrics, rt_env, nm, om, client = free_ports(9)
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            "--block",
            f"--port={gcs}",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dash}",
            f"--dashboard-agent-listen-port={agent_http}",
            f"--dashboard-agent-grpc-port={agent_grpc}",
            f"--metrics-export-port={metrics}",
            f"--runtime-env-agent-port={rt_env}",
            f"--node-manager-port={nm}",
            f"--object-manager-port={om}",
            f"--ray-client-server-port={client}",
            "--num-cpus=2",
            "--num-gpus=0",
            f"--temp-dir={ray_tmp}",
            "--disable-usage-stats",
        ],
        env=env,
        cwd=REPO,
        start_new_session=True,
        stdout=open(tmp_path / "head.log", "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_http(dash, timeout=120)
        except TimeoutError as exc:
            raise AssertionError((tmp_path / "head.log").read_text()[-3000:]) from exc
        job = subprocess.Popen(
            [
                str(RAY),
                "job",
                "submit",
                "--address",
                f"http://127.0.0.1:{dash}",
                "--working-dir",
                ".",
                "--",
                "python",
                "-m",
                "app.tuning.sweep",
                "--config",
                str(config),
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # the panel's job goes to the same head while the sweep runs: a ~3 s walk-forward whose
        # job and driver start-up overlap the sweep's instead of following it
        try:
            board, info = _submit_panel_job(f"http://127.0.0.1:{dash}", sim, tmp_path)
            log, _ = job.communicate(timeout=360)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
        assert job.returncode == 0, log[-3000:]
        assert "succeeded" in log, log[-3000:]
        research = _follow(board, info)
    finally:
        stop_group(head, str(ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)

    report = json.loads((out / "best_config.json").read_text())
    assert report["trials"] == 2 and report["n_configurations"] == 2 and report["folds"] == [1]
    # ASHA may stop the weaker trial at a rung before its test report (asynchronous: which
    # trial reaches a rung first decides), so one or two trials finish
    finished = report["trials_finished"]
    assert finished in (1, 2)
    assert report["deflated_sharpe"]["n_trials"] == finished
    assert report["best_config_key"] in {c["config_key"] for c in report["configs"]}
    assert 0.3 < report["best"]["test_dacc"] < 0.7
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + one row per trial, finished or stopped
    assert (tmp_path / "registry" / report["version"] / "weights.pt").is_file()
    # the best configuration refitted by TorchTrainer with 2 DDP workers is what got registered
    final = report["final_fit"]
    assert final["workers"] == 2 and final["fold"] == 1 and final["epochs_run"] >= 1
    assert 0.3 < final["test"]["dacc"] < 0.7
    saved = json.loads((tmp_path / "registry" / report["version"] / "metrics.json").read_text())
    assert saved["test"] == final["test"]
    # the panel's "Start job" on the same head: POST /v1/jobs' board with the Ray runner
    assert research.runner == "ray" and research.status == "SUCCEEDED", research.log_tail
    assert research.report is not None and Path(research.report).is_file()
    assert research.summary is not None and research.summary.get("version")


def _submit_panel_job(address: str, sim: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The worker's job board (``live --jobs-address``) submits its walk-forward kind as a
    Ray job; (board, its first info)."""
    from app.serve.worker_api import job_board

    board = job_board(sim, tmp_path / "worker", tmp_path / "registry-jobs", None, address)
    assert board is not None
    return board, board.submit("walkforward")


def _follow(board, info):  # type: ignore[no-untyped-def]
    """The board's view of the job (status, log tail) until it finishes, or 300 s."""
    from app.serve.jobs import FINISHED

    deadline = time.monotonic() + 300
    while info.status not in FINISHED and time.monotonic() < deadline:
        time.sleep(0.5)
        info = board.get(info.id)
    return info
