"""API keys: roles from the environment, constant-time lookup, and a safe start without keys."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from app.config import load_settings
from app.serve.auth import ApiKeyError, KeyChecker, Role, check_keys, is_loopback, resolve_keys
from tests.unit.serve.serve_builders import api_settings, fresh_keys


def test_keys_and_roles_come_from_the_environment_as_json_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = fresh_keys()
    monkeypatch.setenv("APP_API__KEYS", json.dumps([keys.operate]))
    monkeypatch.setenv("APP_API__READ_KEYS", json.dumps([keys.read]))
    settings = load_settings()
    assert keys.operate not in repr(settings) and keys.read not in str(settings.api)
    checker = KeyChecker(settings.api)
    assert checker.role_of(keys.operate) is Role.OPERATE
    assert checker.role_of(keys.read) is Role.READ
    assert checker.role_of(keys.read + "x") is None
    assert checker.role_of("") is None and checker.role_of(None) is None


def test_unknown_api_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="api.kees"):
        load_settings(api={"kees": []})


@pytest.mark.parametrize(
    ("operate", "read", "match"),
    [
        (["short"], [], r"api.keys\[0\]: a key needs 16\+"),
        ([" " + "k" * 20], [], r"api.keys\[0\]"),
        ([], ["r" * 20, "r" * 20], r"api.read_keys\[1\]: the same key as api.read_keys\[0\]"),
        (["s" * 20], ["s" * 20], r"api.read_keys\[0\]: the same key as api.keys\[0\]"),
    ],
)
def test_bad_keys_are_refused_without_showing_them(tmp_path: Path, operate, read, match) -> None:
    settings = load_settings(api={"keys": operate, "read_keys": read})
    with pytest.raises(ApiKeyError, match=match) as err:
        check_keys(settings.api)
    for key in operate + read:
        assert key.strip() not in str(err.value)


def test_loopback_without_keys_generates_one_key_and_prints_it_once() -> None:
    lines: list[str] = []
    settings = resolve_keys(load_settings(api={"host": "127.0.0.1"}), announce=lines.append)
    [key] = [k.get_secret_value() for k in settings.api.keys]
    assert len(lines) == 1 and lines[0].endswith(key) and len(key) >= 32
    assert KeyChecker(settings.api).role_of(key) is Role.OPERATE
    again: list[str] = []
    assert resolve_keys(settings, announce=again.append) is settings and again == []
    other = resolve_keys(load_settings(api={"host": "::1"}), announce=again.append)
    assert other.api.keys[0].get_secret_value() != key  # a new key each start


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_non_loopback_without_keys_refuses_to_start(host: str) -> None:
    lines: list[str] = []
    with pytest.raises(ApiKeyError, match=f"api.host='{host}' is not a loopback address"):
        resolve_keys(load_settings(api={"host": host}), announce=lines.append)
    assert lines == []


def test_configured_keys_are_kept_on_any_host(tmp_path: Path) -> None:
    keys = fresh_keys()
    settings = api_settings(tmp_path, keys, host="0.0.0.0")
    lines: list[str] = []
    assert resolve_keys(settings, announce=lines.append) is settings and lines == []


def test_checker_needs_a_key_and_loopback_names() -> None:
    with pytest.raises(ApiKeyError, match="resolve_keys"):
        KeyChecker(load_settings().api)
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and is_loopback("::1")
    assert not is_loopback("localhost.example.com")


def test_lookup_compares_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: the work does not depend on which key (if any) matches."""
    import app.serve.auth as auth

    keys = [secrets.token_urlsafe(24) for _ in range(4)]
    checker = KeyChecker(load_settings(api={"keys": keys}).api)
    calls: list[int] = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    for presented in (keys[0], keys[3], "x" * 30):
        calls.clear()
        checker.role_of(presented)
        assert len(calls) == 4


def test_api_settings_defaults_and_feed_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    api = load_settings().api
    assert (api.host, api.port, api.signal_stale_bars) == ("127.0.0.1", 8000, 2)
    assert api.keys == () and api.cors_origins == ()
    monkeypatch.setenv("APP_API__FEED_STALE_S", '{"crypto": 60}')
    monkeypatch.setenv("APP_API__CORS_ORIGINS", '["http://127.0.0.1:7860"]')
    api = load_settings().api
    assert api.feed_stale_s == {"crypto": 60.0, "stocks": 900.0, "forex": 900.0}
    assert api.cors_origins == ("http://127.0.0.1:7860",)
    with pytest.raises(ValueError, match=r"feed_stale_s\[forex\]=0.0: must be > 0"):
        load_settings(api={"feed_stale_s": {"forex": 0}})
