"""Integration fixtures: local Ray with Serve, started once per test session (Serve's start-up
costs ~10 s here), the HTTP proxy on 127.0.0.1 and a free port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ray_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Ray + Serve for the session; yields the HTTP proxy's base URL."""
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    port = _free_port()
    serve.start(
        http_options={"host": "127.0.0.1", "port": port},
        logging_config={"enable_access_log": False},
    )
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
    ray.shutdown()
