"""The control panel beside the worker: ``python -m app panel`` as a child process.

The panel talks to the API over HTTP only, so the worker starts it as it would start any
client: a subprocess pointed at the API's URL, presenting a key. The key travels in the child's
environment (``APP_UI__API_KEY``), never on its command line; an ``APP_UI__API_KEY`` already set
wins. The panel's own login (``APP_UI__USER`` / ``APP_UI__PASSWORD``) is inherited. Gradio's
start-up takes seconds: the worker does not wait for it; a reader thread announces the panel's
URL when the child prints it. ``stop`` ends the child (SIGTERM, then SIGKILL after a grace).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

PREFIX = "control panel: "


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class PanelProcess:
    """``python -m app panel --api URL --port PORT`` with the key in its environment."""

    def __init__(
        self,
        api_url: str,
        api_key: str | None,
        *,
        port: int | None = None,
        config: Path | None = None,
        announce: Callable[[str], None] = print,
    ) -> None:
        self.api_url = api_url
        self.port = port
        self.config = config
        self.announce = announce
        self.url = ""
        self.ready = threading.Event()
        self._key = api_key
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.last_lines: list[str] = []

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "app", "panel", "--api", self.api_url]
        if self.port is not None:
            argv += ["--port", str(self.port or free_port())]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        return argv

    def env(self, base: Mapping[str, str] = os.environ) -> dict[str, str]:
        env = {**base, "PYTHONUNBUFFERED": "1"}
        if self._key is not None and not env.get("APP_UI__API_KEY"):
            env["APP_UI__API_KEY"] = self._key
        return env

    def start(self) -> None:
        self._proc = subprocess.Popen(  # noqa: S603 - our own CLI
            self.argv(),
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name="panel-out", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.rstrip()
            self.last_lines = (self.last_lines + [line])[-20:]
            if line.startswith(PREFIX) and not self.url:
                self.url = line.removeprefix(PREFIX).split()[0]
                self.announce(f"control panel: {self.url}  (talks to {self.api_url})")
                self.ready.set()
        code = self._proc.wait()
        if not self.ready.is_set():
            why = self.last_lines[-1] if self.last_lines else f"exit code {code}"
            self.announce(f"control panel did not start: {why}")
            self.ready.set()

    def stop(self, grace_s: float = 10.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
