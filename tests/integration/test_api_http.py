"""The signal API over real HTTP: uvicorn on 127.0.0.1 (a free port), started once per module.

The live loop's side runs in this (test) thread while the server runs in its own, as in the
worker: signals and fills published here must reach an SSE client over the socket.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.clock import ReplayClock
from app.config import load_settings
from app.serve.api import build_api
from app.serve.auth import resolve_keys
from app.serve.memory import MemoryLiveView
from app.types import Fill, Side
from tests.builders import T0
from tests.unit.serve.serve_builders import (
    VERSIONS,
    close_of,
    live_view,
    populate,
    signal_at,
    tiny_registry,
)

ROUTES = [
    ("GET", "/v1/signals/BTCUSDT", None, {"ticker", "signal", "confidence", "probs", "stale"}),
    ("GET", "/v1/signals", None, {"signals"}),
    ("GET", "/v1/portfolio", None, {"equity", "day_pnl", "day_drawdown", "positions"}),
    ("GET", "/v1/orders?status=FILLED&limit=10", None, {"orders"}),
    ("GET", "/v1/fills?since=2025-01-01T00:00:00Z", None, {"fills"}),
    ("GET", "/v1/equity?since=2025-01-01T00:00:00Z", None, {"points"}),
    ("GET", "/v1/performance", None, {"sharpe", "max_drawdown", "total_return", "win_rate"}),
    ("GET", "/v1/risk", None, {"state", "reasons", "limits", "halt_until"}),
    ("POST", "/v1/risk/halt", {"reason": "http test"}, {"state", "reasons"}),
    ("POST", "/v1/risk/resume", None, {"state", "reasons"}),
    ("POST", "/v1/risk/reducing", {"on": False}, {"state", "reasons"}),
    ("GET", "/v1/models", None, {"models"}),
    ("POST", "/v1/models/promote", {"version": VERSIONS[0]}, {"previous", "current"}),
    ("GET", "/v1/feeds", None, {"feeds"}),
]


class Served:
    def __init__(self, tmp: Path) -> None:
        self.announced: list[str] = []
        settings = resolve_keys(
            load_settings(registry_dir=tmp / "registry", api={"host": "127.0.0.1"}),
            announce=self.announced.append,
        )
        self.key = settings.api.keys[0].get_secret_value()
        tiny_registry(settings.registry_dir)
        self.clock = ReplayClock(T0)
        self.view: MemoryLiveView = live_view(settings, self.clock)
        populate(self.view, self.clock)
        config = uvicorn.Config(
            build_api(self.view, settings), host="127.0.0.1", port=0, log_level="info"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        [sock] = self.server.servers[0].sockets
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1"
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("api-http"))
    s.start()
    yield s
    s.stop()
    assert not s.thread.is_alive()


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as c:
        yield c


def test_the_one_time_key_was_printed_once(served: Served) -> None:
    assert len(served.announced) == 1 and served.announced[0].endswith(served.key)


def test_every_route_answers_over_http(served: Served, client: httpx.Client) -> None:
    headers = {"X-API-Key": served.key}
    for method, path, body, keys in ROUTES:
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 200, (path, r.text)
        assert keys <= set(r.json()), path
    assert client.get("/healthz").json() == {"status": "ok"}
    metrics = client.get("/metrics", headers=headers)
    assert metrics.status_code == 200 and "api_requests_total" in metrics.text
    assert client.get("/v1/signals/XRPUSDT", headers=headers).status_code == 404
    assert client.get("/v1/orders?limit=0", headers=headers).status_code == 422


def test_every_route_but_healthz_is_401_without_a_key(client: httpx.Client) -> None:
    for method, path, body, _ in [
        *ROUTES,
        ("GET", "/metrics", None, set()),
        ("GET", "/v1/stream", None, set()),
    ]:
        r = client.request(method, path, json=body)
        assert r.status_code == 401, path


def test_sse_delivers_what_the_loop_publishes_over_http(
    served: Served, client: httpx.Client
) -> None:
    got: list[tuple[str, dict]] = []

    def listen() -> None:
        with client.stream(
            "GET", "/v1/stream?limit=2", headers={"X-API-Key": served.key}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    got.append((event, json.loads(line[6:])))

    listener = threading.Thread(target=listen)
    listener.start()
    deadline = time.monotonic() + 10
    while not served.view.events.subscribers and time.monotonic() < deadline:
        time.sleep(0.02)
    served.clock.advance_to(T0 + close_of(6))
    served.view.publish_signal(*signal_at(6))  # from this thread, not the server's loop
    served.view.record_fill(Fill("o6", "BTCUSDT", Side.BUY, 1.0, 101.0, 0.1, T0, fill_id="t6"))
    listener.join(timeout=10)
    assert not listener.is_alive()
    assert [kind for kind, _ in got] == ["signal", "fill"]
    assert got[0][1]["as_of"] == "2025-01-01T00:30:00Z" and got[1][1]["fill_id"] == "t6"


def test_no_key_in_the_server_logs(
    served: Served, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.get("/v1/risk", headers={"X-API-Key": served.key})
    client.get("/v1/risk", headers={"X-API-Key": served.key + "x"})
    time.sleep(0.2)  # access log lines are written by the server thread
    text = caplog.text.replace(
        f"/v1/signals/{served.key}", ""
    )  # a key sent as a path is the caller's
    assert "GET /v1/risk" in text and served.key not in text
