"""The real live worker for the panel's browser test: ``python -m app live`` in a subprocess.

It replays a small simulator folder in paper mode at a fixed pace with a promoted tiny model
(as tests/integration/test_live_cli.py builds it), serves the API on a free loopback port with
its one-time key, and starts the control panel beside it (``--panel-port``); the panel's login
comes from the environment given here. ``LiveWorker`` reads the worker's stdout for the key and
the two URLs, and ends the process group (SIGTERM, then SIGKILL) on ``stop``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from app.cli.main import main
from app.config import load_settings
from app.tuning.data_loading import load_data
from tests.unit.live.session_builders import save_promoted, tiny_model

REPO = Path(__file__).resolve().parents[2]
KEY_LINE = re.compile(r"API key for this run only .*: (\S+)$")


def sim_folder(root: Path, days: int = 3, news_per_day: int = 16) -> Path:
    folder = root / "sim"
    argv = ["simulate", "--out", str(folder), "--days", str(days), "--seed", "3"]
    argv += ["--news-per-day", str(news_per_day)]
    assert main([*argv, "--symbols", "BTCUSDT", "ETHUSDT"]) == 0
    return folder


def promoted_config(root: Path, sim: Path) -> Path:
    """A registry with a promoted tiny model that trades on ``sim``, and a settings file."""
    settings = load_settings()
    data = load_data([sim], None, None, news=False, news_impact=False, settings=settings)
    registry = save_promoted(root / "registry", tiny_model(data.bars, sharp=1.0))
    config = root / "settings.toml"
    config.write_text(f'registry_dir = "{registry}"\n')
    return config


class LiveWorker:
    """``python -m app live --replay SIM --speed N --port 0 --panel-port P`` and its output."""

    def __init__(
        self,
        root: Path,
        sim: Path,
        config: Path,
        *,
        speed: float,
        panel_port: int,
        duration_s: float,
        env: dict[str, str],
        replay_from: str | None = None,
    ) -> None:
        self.out = root / "live"
        self.argv = [
            sys.executable, "-m", "app", "live", "--config", str(config),
            "--replay", str(sim), "--speed", str(speed), "--port", "0",
            "--panel-port", str(panel_port), "--duration", str(duration_s), "--out", str(self.out),
        ]  # fmt: skip
        if replay_from is not None:  # the warm-up before it runs unpaced
            self.argv += ["--replay-from", replay_from]
        base = {k: v for k, v in os.environ.items() if not k.startswith(("APP_API__", "APP_UI__"))}
        self.env = {**base, "PYTHONUNBUFFERED": "1", **env}
        self.lines: list[str] = []
        self.key = self.api_url = self.panel_url = ""
        self._proc: subprocess.Popen[str] | None = None
        self.left_behind = False

    def start(self, timeout_s: float = 90.0) -> LiveWorker:
        self._proc = subprocess.Popen(
            self.argv,
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own group: stop() ends the panel child too
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not (self.key and self.api_url and self.panel_url):
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.stop()
                tail = "\n".join(self.lines[-60:])
                raise RuntimeError(f"the live worker or its panel did not start:\n{tail}")
            time.sleep(0.1)
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.rstrip()
            self.lines.append(line)
            if m := KEY_LINE.search(line):
                self.key = m.group(1)
            elif line.startswith("signal API: "):
                self.api_url = line.split()[2]
            elif line.startswith("control panel: "):
                self.panel_url = line.split()[2]

    def get(self, path: str, **params: object) -> dict:
        r = httpx.get(
            f"{self.api_url}{path}", params=params, headers={"X-API-Key": self.key}, timeout=10
        )
        r.raise_for_status()
        return r.json()

    def stop(self, timeout_s: float = 90.0) -> int | None:
        """SIGTERM to the worker (it ends its panel child itself); then anything left in its
        process group is killed and ``left_behind`` says so."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            self.left_behind = True
        except ProcessLookupError:
            pass
        return proc.returncode

    def summary(self) -> dict:
        """The JSON summary the worker printed last."""
        return json.loads(self.lines[-1])
