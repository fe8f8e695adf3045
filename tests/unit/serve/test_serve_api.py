"""The v1 API in-process: every route's shape, keys and roles, errors, staleness, the stream."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.clock import ReplayClock
from app.models.registry import promoted_version
from app.serve.api import build_api
from app.serve.memory import MemoryLiveView
from app.types import Fill, Side
from tests.builders import T0
from tests.unit.serve.serve_builders import (
    VERSIONS,
    Keys,
    api_settings,
    close_of,
    fresh_keys,
    live_view,
    populate,
    signal_at,
    tiny_registry,
)


class Api:
    def __init__(self, tmp_path: Path, **api: object) -> None:
        self.keys: Keys = fresh_keys()
        self.settings = api_settings(tmp_path, self.keys, **api)
        tiny_registry(self.settings.registry_dir)
        self.clock = ReplayClock(T0)
        self.view: MemoryLiveView = live_view(self.settings, self.clock, initial_equity=1000.0)
        self.app = build_api(self.view, self.settings)
        self.client = TestClient(self.app)

    def get(self, path: str, **params: object) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.keys.ro())

    def post(self, path: str, body: object = None, *, read: bool = False) -> httpx.Response:
        headers = self.keys.ro() if read else self.keys.op()
        return self.client.post(path, json=body, headers=headers)


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return Api(tmp_path, cors_origins=["http://panel.local"])


def _fill(api: Api) -> None:
    populate(api.view, api.clock)


def test_signal_shape_matches_the_issue(api: Api) -> None:
    _fill(api)
    body = api.get("/v1/signals/BTCUSDT").json()
    assert set(body) == {
        "ticker", "signal", "confidence", "probs", "model_version", "as_of", "computed_at",
        "age_s", "stale", "risk",
    }  # fmt: skip
    assert body["signal"] == "BUY" and body["confidence"] == 0.8
    assert body["probs"] == pytest.approx({"up": 0.8, "down": 0.1, "flat": 0.1})
    assert body["as_of"] == "2025-01-01T00:10:00Z" and body["age_s"] == 0.0
    assert body["stale"] is False and body["model_version"] == VERSIONS[0]
    assert body["risk"] == {"state": "ACTIVE", "action": "HOLD", "reasons": ["signal_hold"]}
    assert [s["ticker"] for s in api.get("/v1/signals").json()["signals"]] == ["BTCUSDT"]


def test_staleness_flips_after_two_bars_through_the_api(api: Api) -> None:
    api.clock.advance_to(T0 + close_of(5))
    api.view.publish_signal(*signal_at(5))
    api.clock.advance_to(T0 + close_of(7))
    body = api.get("/v1/signals/BTCUSDT").json()
    assert body["stale"] is False and body["age_s"] == 600.0
    api.clock.advance_to(T0 + close_of(8))
    assert api.get("/v1/signals/BTCUSDT").json()["stale"] is True
    assert api.get("/v1/signals").json()["signals"][0]["stale"] is True


def test_account_routes(api: Api) -> None:
    _fill(api)
    p = api.get("/v1/portfolio").json()
    assert p["equity"] == 1010.0 and p["day_pnl"] == 10.0 and p["day_drawdown"] == 0.0
    assert p["gross_exposure"] == pytest.approx(210.0 / 1010.0)
    [pos] = p["positions"]
    assert pos["symbol"] == "BTCUSDT" and pos["unrealized_pnl"] == pytest.approx(9.0)
    [o] = api.get("/v1/orders", status="FILLED", limit=5).json()["orders"]
    assert o["client_order_id"] == "BTCUSDT-1-L" and o["avg_fill_price"] == 100.5
    assert api.get("/v1/orders", status="CANCELED").json() == {"orders": []}
    [f] = api.get("/v1/fills", since="2025-01-01T00:10:00+00:00").json()["fills"]
    assert f["fill_id"] == "t1" and f["ts"] == "2025-01-01T00:10:00Z"
    assert api.get("/v1/fills", since="2025-01-01T01:10:00+01:00").json()["fills"] == [f]
    assert api.get("/v1/fills", since="2025-01-01T00:10:01Z").json() == {"fills": []}
    points = api.get("/v1/equity", since="2025-01-01T00:05:00Z").json()["points"]
    assert [x["equity"] for x in points] == [1005.0, 1010.0]
    perf = api.get("/v1/performance").json()
    assert perf["total_return"] == pytest.approx(0.01) and perf["bars"] == 3
    assert set(perf) >= {"sharpe", "max_drawdown", "total_return", "win_rate"}


def test_risk_routes_and_commands(api: Api) -> None:
    r = api.get("/v1/risk").json()
    assert r["state"] == "ACTIVE" and r["halt_until"] is None
    assert r["limits"]["confidence_gate"] == 0.7 and r["limits"]["max_daily_drawdown"] == 0.02
    halted = api.post("/v1/risk/halt", {"reason": "  maintenance  "}).json()
    assert halted["state"] == "HALTED" and halted["reasons"] == ["halted:kill_switch:maintenance"]
    assert api.view.engine.state.value == "HALTED"
    assert api.post("/v1/risk/reducing", {"on": True}).json()["state"] == "HALTED"
    resumed = api.post("/v1/risk/resume").json()
    assert resumed["state"] == "ACTIVE" and resumed["reasons"] == []
    assert api.post("/v1/risk/reducing", {"on": True}).json()["state"] == "REDUCING"
    assert api.get("/v1/risk").json()["reasons"] == ["reducing:operator"]


def test_models_and_feeds(api: Api) -> None:
    _fill(api)
    models = api.get("/v1/models").json()["models"]
    assert [m["version"] for m in models] == list(VERSIONS)
    assert models[0]["metrics"] == {"val_dacc": 0.55} and models[0]["kind"] == "lstm"
    done = api.post("/v1/models/promote", {"version": VERSIONS[1]}).json()
    assert done == {"previous": "", "current": VERSIONS[1]}
    assert [m["promoted"] for m in api.get("/v1/models").json()["models"]] == [False, True]
    root = Path(api.settings.registry_dir)  # a version trained for forex: not this account's
    shutil.copytree(root / VERSIONS[0], root / "lstm-forex")
    (root / "lstm-forex" / "feature_spec.json").write_text('{"asset_class": "forex"}')
    refused = api.post("/v1/models/promote", {"version": "lstm-forex"})
    assert refused.status_code == 422 and "is a forex model" in refused.json()["detail"]
    assert promoted_version(root) == VERSIONS[1]
    [feed] = api.get("/v1/feeds").json()["feeds"]
    assert feed["source"] == "replay-crypto" and feed["status"] == "ok" and feed["lag_s"] == 0.0
    assert feed["last_bar_ts"] == "2025-01-01T00:10:00Z" and feed["limit_s"] == 900.0


def test_health_is_public_and_metrics_count_requests(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    api.get("/v1/signals/NOPE")
    text = api.get("/metrics").text
    assert 'api_requests_total{method="GET",route="/v1/signals/{ticker}",status="404"} 1.0' in text
    assert "api_stream_subscribers 0.0" in text


def _routes(app) -> list[tuple[str, str]]:
    """(method, path) of every documented route but /healthz, from the OpenAPI schema."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        if path != "/healthz":
            out.extend((m.upper(), path.replace("{ticker}", "BTCUSDT")) for m in ops)
    return sorted(out)


def test_every_route_but_healthz_needs_a_key(api: Api) -> None:
    routes = _routes(api.app)
    assert len(routes) == 16  # the issue's list: 15 under /v1 plus /metrics
    for method, path in routes:
        for headers in ({}, {"X-API-Key": "wrong-" + api.keys.operate}):
            r = api.client.request(method, path, headers=headers, json={"bad": 1})
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json() == {"detail": "missing or invalid X-API-Key"}
    assert api.client.get("/v1/no-such-route").status_code == 401  # nothing to learn


def test_a_read_key_cannot_command(api: Api) -> None:
    posts = [p for m, p in _routes(api.app) if m == "POST"]
    assert len(posts) == 4
    for path in posts:
        r = api.post(path, {"reason": "x", "on": True, "version": VERSIONS[0]}, read=True)
        assert r.status_code == 403, path
    assert api.view.engine.state.value == "ACTIVE"


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "code"),
    [
        ("GET", "/v1/signals/XRPUSDT", {}, None, 404),  # not in the universe
        ("GET", "/v1/signals/ETHUSDT", {}, None, 404),  # in the universe, no signal yet
        ("POST", "/v1/models/promote", {}, {"version": "lstm-missing"}, 404),
        ("GET", "/v1/signals/bad%20ticker!", {}, None, 422),
        ("GET", "/v1/orders", {"limit": 0}, None, 422),
        ("GET", "/v1/orders", {"limit": 1001}, None, 422),
        ("GET", "/v1/orders", {"status": "DONE"}, None, 422),
        ("GET", "/v1/fills", {"since": "2025-01-01T00:00:00"}, None, 422),  # naive
        ("GET", "/v1/equity", {"since": "yesterday"}, None, 422),
        ("GET", "/v1/stream", {"kinds": "gossip"}, None, 422),
        ("POST", "/v1/risk/halt", {}, {"reason": "   "}, 422),
        ("POST", "/v1/risk/halt", {}, {"reason": "\x1f"}, 422),  # str.strip() removes it
        ("POST", "/v1/risk/halt", {}, {}, 422),
        ("POST", "/v1/risk/reducing", {}, {"on": "maybe"}, 422),
        ("POST", "/v1/risk/reducing", {}, {"on": True, "extra": 1}, 422),
        ("POST", "/v1/models/promote", {}, {"version": "../etc"}, 422),
    ],
)
def test_error_codes(api: Api, method, path, params, body, code) -> None:
    r = api.client.request(method, path, params=params, json=body, headers=api.keys.op())
    assert r.status_code == code, r.text
    assert api.view.engine.state.value == "ACTIVE"


def test_malformed_json_body_is_422(api: Api) -> None:
    r = api.client.post(
        "/v1/risk/halt",
        content=b"{not json",
        headers={**api.keys.op(), "content-type": "application/json"},
    )
    assert r.status_code == 422


def test_cors_allows_only_configured_origins(api: Api) -> None:
    pre = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-API-Key"}
    ok = api.client.options("/v1/signals", headers={"Origin": "http://panel.local", **pre})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "http://panel.local"
    bad = api.client.options("/v1/signals", headers={"Origin": "http://evil.example", **pre})
    assert "access-control-allow-origin" not in bad.headers
    r = api.client.get("/v1/risk", headers={"Origin": "http://panel.local", **api.keys.ro()})
    assert r.headers["access-control-allow-origin"] == "http://panel.local"


def test_no_key_in_any_log_line(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _fill(api)
    api.get("/v1/signals/BTCUSDT")
    api.post("/v1/risk/halt", {"reason": "x"}, read=True)
    api.client.get("/v1/risk", headers={"X-API-Key": api.keys.operate + "z"})
    api.post("/v1/risk/halt", {"reason": "x"})
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert api.keys.operate not in text and api.keys.read not in text


def test_openapi_documents_every_route_and_the_key(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()  # the docs are public, and hold no data
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    paths = schema["paths"]
    assert set(paths) == {
        "/healthz", "/metrics", "/v1/signals/{ticker}", "/v1/signals", "/v1/portfolio",
        "/v1/orders", "/v1/fills", "/v1/equity", "/v1/performance", "/v1/risk",
        "/v1/risk/halt", "/v1/risk/resume", "/v1/risk/reducing", "/v1/models",
        "/v1/models/promote", "/v1/feeds", "/v1/stream",
    }  # fmt: skip
    sig = paths["/v1/signals/{ticker}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert sig["schema"]["$ref"].endswith("/SignalOut")
    assert api.client.get("/docs").status_code == 200


async def _subscribed(api: Api) -> None:
    """Wait (up to 5 s) until the stream request has subscribed to the hub."""
    for _ in range(500):
        if api.view.events.subscribers:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the stream never subscribed")


def test_stream_delivers_a_published_signal_in_process(api: Api) -> None:
    async def run() -> list[str]:
        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            request = asyncio.ensure_future(
                client.get("/v1/stream", params={"limit": 2}, headers=api.keys.ro())
            )
            await _subscribed(api)
            api.clock.advance_to(T0 + close_of(4))
            api.view.publish_signal(*signal_at(4))
            api.view.record_fill(Fill("o", "BTCUSDT", Side.SELL, 1.0, 99.0, 0.1, T0, fill_id="t9"))
            response = await asyncio.wait_for(request, timeout=10)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            return response.text.splitlines()

    lines = asyncio.run(run())
    events = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
    data = [json.loads(line.split(": ", 1)[1]) for line in lines if line.startswith("data: ")]
    assert events == ["signal", "fill"]
    assert data[0]["ticker"] == "BTCUSDT" and data[0]["stale"] is False
    assert data[0]["as_of"] == "2025-01-01T00:20:00Z" and data[1]["fill_id"] == "t9"
    assert [line for line in lines if line.startswith("id: ")] == ["id: 1", "id: 2"]
    assert api.view.events.subscribers == 0  # closed with the stream


def test_stream_filters_kinds_and_refuses_when_full(tmp_path: Path) -> None:
    api = Api(tmp_path, sse_max_subscribers=1)

    async def run() -> None:
        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = asyncio.ensure_future(
                client.get(
                    "/v1/stream", params={"kinds": "risk", "limit": 1}, headers=api.keys.ro()
                )
            )
            await _subscribed(api)
            full = await client.get("/v1/stream", headers=api.keys.ro())
            assert full.status_code == 503 and "max_subscribers=1" in full.json()["detail"]
            api.view.publish_signal(*signal_at(0))  # not a risk event: filtered out
            await api.view.set_reducing(True)
            body = (await asyncio.wait_for(first, timeout=10)).text
            assert "event: risk" in body and "event: signal" not in body
            assert json.loads(body.split("data: ", 1)[1].splitlines()[0])["state"] == "REDUCING"

    asyncio.run(run())
