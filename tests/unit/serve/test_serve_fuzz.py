"""Schemathesis fuzz against the API's own OpenAPI: no input, key or role gives a 5xx, and
every answer matches the documented schema. /v1/stream is left out (it waits for events by
design; its 401/422/503 cases are in test_serve_api.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.clock import ReplayClock
from app.serve.api import build_api
from tests.builders import T0
from tests.unit.serve.serve_builders import (
    api_settings,
    fresh_keys,
    live_view,
    populate,
    tiny_registry,
)

_DIR = Path(tempfile.mkdtemp(prefix="serve-fuzz-"))
KEYS = fresh_keys()
SETTINGS = api_settings(_DIR, KEYS)
tiny_registry(SETTINGS.registry_dir)
CLOCK = ReplayClock(T0)
VIEW = live_view(SETTINGS, CLOCK)
populate(VIEW, CLOCK)
APP = build_api(VIEW, SETTINGS)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/v1/stream")
WHO = {"operate": KEYS.op(), "read": KEYS.ro(), "none": {}, "wrong": {"X-API-Key": "x" * 20}}


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    shutil.rmtree(_DIR, ignore_errors=True)


@given(case=SCHEMA.as_strategy(), who=st.sampled_from(sorted(WHO)))
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_fuzz_finds_no_server_error(case, who: str) -> None:
    headers = WHO[who]
    if not headers:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"}
    response = case.call(headers=headers)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
    if case.path == "/healthz":
        assert response.status_code == 200
    elif who in ("none", "wrong"):
        assert response.status_code == 401
    elif who == "read" and case.method == "POST":
        assert response.status_code == 403
