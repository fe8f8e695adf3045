"""POST /v1/feeds/{asset_class}/stop|start and GET /v1/feeds/control: roles, 404, 422, state."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.clock import ReplayClock
from app.serve.run_info import RunInfo
from app.serve.worker_api import build_worker_api
from app.types import AssetClass
from tests.builders import T0
from tests.unit.serve.serve_builders import api_settings, fresh_keys, live_view


@pytest.fixture
def served(tmp_path: Path):
    keys = fresh_keys()
    settings = api_settings(tmp_path, keys)
    clock = ReplayClock(T0)
    view = live_view(settings, clock)
    parts = build_worker_api(
        view,
        settings,
        tickers=view.tickers(),
        classes=[AssetClass.CRYPTO],
        clock=clock,
        info=RunInfo("paper", "paper", T0),
    )
    return TestClient(parts.app), parts.switch, keys


def test_stop_and_start_a_class(served) -> None:
    client, switch, keys = served
    got = client.get("/v1/feeds/control", headers=keys.ro()).json()
    assert got == {"classes": [{"asset_class": "crypto", "state": "running", "stopped_at": None}]}
    r = client.post("/v1/feeds/crypto/stop", headers=keys.op())
    assert r.status_code == 200 and r.json()["classes"][0]["state"] == "stopped"
    assert r.json()["classes"][0]["stopped_at"] == "2025-01-01T00:00:00Z"
    assert not switch.running(AssetClass.CRYPTO)
    client.post("/v1/feeds/crypto/stop", headers=keys.op())  # twice: still stopped, same time
    assert client.get("/v1/feeds/control", headers=keys.ro()).json()["classes"][0][
        "stopped_at"
    ] == ("2025-01-01T00:00:00Z")
    r = client.post("/v1/feeds/crypto/start", headers=keys.op())
    assert r.json()["classes"][0]["state"] == "running" and switch.running(AssetClass.CRYPTO)


def test_roles_unknown_and_malformed_classes(served) -> None:
    client, switch, keys = served
    assert client.post("/v1/feeds/crypto/stop").status_code == 401
    assert client.post("/v1/feeds/crypto/stop", headers=keys.ro()).status_code == 403
    assert client.get("/v1/feeds/control").status_code == 401
    r = client.post("/v1/feeds/stocks/stop", headers=keys.op())
    assert r.status_code == 404 and "feeds crypto only" in r.json()["detail"]
    assert client.post("/v1/feeds/bonds/stop", headers=keys.op()).status_code == 422
    assert switch.running(AssetClass.CRYPTO)


def test_the_feeds_list_route_is_not_shadowed(served) -> None:
    client, _, keys = served
    assert client.get("/v1/feeds", headers=keys.ro()).status_code == 200
