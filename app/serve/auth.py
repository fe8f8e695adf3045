"""API keys: two roles, constant-time checks, and a safe start without configured keys.

Roles: a *read* key (``APP_API__READ_KEYS``) may call every GET; an *operate* key
(``APP_API__KEYS``) may also call the POST commands. Keys travel in the ``X-API-Key`` header;
every route but ``/healthz`` needs one. A presented key is compared with every configured key
through ``hmac.compare_digest`` on SHA-256 digests (same length, no early exit), and no key is
ever written to a log line or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable
from enum import StrEnum

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import ApiSettings, Settings

HEADER = "X-API-Key"
MIN_KEY_LENGTH = 16


class Role(StrEnum):
    READ = "read"
    OPERATE = "operate"


class ApiKeyError(ValueError):
    """The API's keys are unusable, or missing where the API would be reachable from outside."""


def check_keys(api: ApiSettings) -> None:
    """Refuse weak, padded or doubly-assigned keys; the message names the slot, not the key."""
    seen: dict[str, str] = {}
    for field in ("keys", "read_keys"):
        for i, secret in enumerate(getattr(api, field)):
            key = secret.get_secret_value()
            where = f"api.{field}[{i}]"
            if len(key) < MIN_KEY_LENGTH or key != key.strip() or not key.isprintable():
                raise ApiKeyError(
                    f"{where}: a key needs {MIN_KEY_LENGTH}+ printable characters and no "
                    "surrounding whitespace (the key is not shown)"
                )
            if key in seen:
                raise ApiKeyError(f"{where}: the same key as {seen[key]}; give each key one role")
            seen[key] = where


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_keys(settings: Settings, announce: Callable[[str], None] = print) -> Settings:
    """The settings the API starts with (the live worker calls this once, before serving).

    Configured keys are checked and kept. With none: on a non-loopback host, refuse to start;
    on loopback, generate a one-time operate key, hand it to ``announce`` once (the console,
    not a log), and return settings that carry it.
    """
    api = settings.api
    if api.keys or api.read_keys:
        check_keys(api)
        return settings
    if not is_loopback(api.host):
        raise ApiKeyError(
            f"api.host={api.host!r} is not a loopback address and no API key is configured: "
            "set APP_API__KEYS (operate) and/or APP_API__READ_KEYS (read), JSON lists; "
            "refusing to start"
        )
    key = secrets.token_urlsafe(32)
    announce(f"API key for this run only (operate role; send it as {HEADER}): {key}")
    return settings.model_copy(update={"api": api.model_copy(update={"keys": (SecretStr(key),)})})


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class KeyChecker:
    """Maps a presented key to its role in constant time over all configured keys."""

    def __init__(self, api: ApiSettings) -> None:
        check_keys(api)
        if not (api.keys or api.read_keys):
            raise ApiKeyError("no API key configured: call app.serve.auth.resolve_keys first")
        self._keys = [(_digest(k.get_secret_value()), Role.OPERATE) for k in api.keys] + [
            (_digest(k.get_secret_value()), Role.READ) for k in api.read_keys
        ]

    def role_of(self, presented: str | None) -> Role | None:
        if not presented:
            return None
        digest = _digest(presented)
        found: Role | None = None
        for key, role in self._keys:  # no early exit: every key is compared
            if hmac.compare_digest(digest, key):
                found = role
        return found


PUBLIC_PATHS = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SCOPE_ROLE = "seed_trader.role"


class AuthMiddleware:
    """Checks the key before routing, parsing or validation, so a request without a valid key
    gets 401 whatever else is wrong with it, and a read key gets 403 on any other method than
    GET/HEAD. Public: /healthz and the API's own documentation (/docs, /openapi.json), which
    hold no data. The role goes into the ASGI scope for the route dependencies."""

    def __init__(self, app: ASGIApp, checker: KeyChecker) -> None:
        self.app = app
        self.checker = checker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        presented = None
        for name, value in scope["headers"]:
            if name == _HEADER_BYTES:
                presented = value.decode("latin-1")
                break
        role = self.checker.role_of(presented)
        if role is None:
            await _deny(scope, receive, send, 401, f"missing or invalid {HEADER}")
            return
        if role is not Role.OPERATE and scope["method"] not in _READ_METHODS:
            await _deny(scope, receive, send, 403, "this command needs an operate key")
            return
        scope[SCOPE_ROLE] = role
        await self.app(scope, receive, send)


_HEADER_BYTES = HEADER.lower().encode("latin-1")


async def _deny(scope: Scope, receive: Receive, send: Send, code: int, detail: str) -> None:
    headers = {"WWW-Authenticate": HEADER} if code == 401 else None
    await JSONResponse({"detail": detail}, code, headers=headers)(scope, receive, send)


_header = APIKeyHeader(
    name=HEADER,
    auto_error=False,
    description="read role: every GET; operate role: also the POST commands",
)


async def _role(request: Request, _key: str | None = Security(_header)) -> Role:
    """The caller's role, as AuthMiddleware found it (declares the key in the OpenAPI)."""
    role = request.scope.get(SCOPE_ROLE)
    if not isinstance(role, Role):  # only reachable if the middleware is missing
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing or invalid {HEADER}")
    return role


async def _operate(role: Role = Depends(_role)) -> Role:
    if role is not Role.OPERATE:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this command needs an operate key")
    return role


READ = Depends(_role)
OPERATE = Depends(_operate)
