"""The shared HTTP helper against a real loopback server: retries, backoff, clear errors."""

from __future__ import annotations

import logging
import secrets

import pytest

from app.sources import SourceUnavailable
from app.sources.http import HttpClient, HttpPolicy, RequestRejected
from tests.unit.sources.side_loopback import (
    Answer,
    LoopbackServer,
    closed_port_url,
    json_answer,
)


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


def client(waits: list[float], **kw) -> HttpClient:
    policy = HttpPolicy(**{"timeout_s": 2.0, "retries": 3, "backoff_s": 0.5, **kw})
    return HttpClient(policy, sleep=waits.append)


def test_5xx_is_retried_with_doubling_backoff_then_succeeds(server):
    server.route("/api", Answer(503), Answer(502), json_answer({"ok": 1}))
    waits: list[float] = []
    with client(waits) as http:
        assert http.get_json(f"{server.url}/api") == {"ok": 1}
        assert http.requests == 3
    assert waits == [0.5, 1.0]
    assert len(server.hits("/api")) == 3


def test_5xx_that_persists_names_the_url_and_attempts(server):
    server.route("/down", Answer(500))
    waits: list[float] = []
    with client(waits, retries=2) as http, pytest.raises(SourceUnavailable) as err:
        http.get(f"{server.url}/down", params={"q": "x"})
    assert f"{server.url}/down?q=x" in str(err.value)
    assert "HTTP 500" in str(err.value) and "after 3 attempts" in str(err.value)
    assert len(server.hits("/down")) == 3 and len(waits) == 2


def test_4xx_is_not_retried_and_carries_the_status(server):
    server.route("/missing", Answer(404, b"not here"))
    waits: list[float] = []
    with client(waits) as http, pytest.raises(RequestRejected) as err:
        http.get(f"{server.url}/missing")
    assert err.value.status == 404 and "not here" in str(err.value)
    assert len(server.hits("/missing")) == 1 and waits == []


def test_429_honours_retry_after_up_to_the_cap(server):
    server.route("/slow", Answer(429, headers=(("Retry-After", "7"),)), json_answer([1]))
    waits: list[float] = []
    with client(waits, max_backoff_s=5.0) as http:
        assert http.get_json(f"{server.url}/slow") == [1]
    assert waits == [5.0]


def test_closed_port_fails_with_the_url_after_the_retries():
    url = f"{closed_port_url()}/feed.xml"
    waits: list[float] = []
    with client(waits, retries=1) as http, pytest.raises(SourceUnavailable) as err:
        http.get(url)
    assert url in str(err.value) and "ConnectError" in str(err.value)
    assert len(waits) == 1


def test_timeout_is_retried_then_reported(server):
    server.route("/hang", Answer(200, b"{}", delay_s=0.6))
    waits: list[float] = []
    with client(waits, timeout_s=0.2, retries=1) as http, pytest.raises(SourceUnavailable) as err:
        http.get(f"{server.url}/hang")
    assert "Timeout" in str(err.value) and f"{server.url}/hang" in str(err.value)


def test_a_body_that_is_not_json_names_the_url(server):
    server.route("/html", Answer(200, b"<html>maintenance</html>", "text/html"))
    with client([]) as http, pytest.raises(SourceUnavailable) as err:
        http.get_json(f"{server.url}/html")
    assert f"{server.url}/html" in str(err.value) and "not JSON" in str(err.value)


def test_headers_never_reach_logs_or_errors(server, caplog):
    secret = secrets.token_hex(12)  # made per run: nothing secret-looking lives in the repo
    server.route("/auth", Answer(503), Answer(401, b'{"title": "Unauthorized"}'))
    caplog.set_level(logging.DEBUG)
    with client([]) as http, pytest.raises(RequestRejected) as err:
        http.get(f"{server.url}/auth", headers={"Authorization": f"Bearer {secret}"})
    assert server.hits("/auth")[0].headers["Authorization"] == f"Bearer {secret}"
    assert secret not in str(err.value)
    assert secret not in caplog.text
    assert "retry 1/3" in caplog.text  # the retry itself was logged


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="timeout_s"):
        HttpPolicy(timeout_s=0)
    with pytest.raises(ValueError, match="retries"):
        HttpPolicy(retries=-1)
