"""A small typed client of the signal API (docs/LIVE.md), as the panel uses it.

Every failure becomes an :class:`ApiError` whose ``message`` an operator can read (the API is
down, the key is refused, a timeout, a bad answer): the panel shows it, never a stack trace.
The key travels in ``X-API-Key`` and appears in no message, repr or log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from app.config import UiSettings

HEADER = "X-API-Key"
Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ApiError(Exception):
    """A request that did not give an answer the panel can use."""

    # down | timeout | unauthorized | forbidden | not_found | invalid | conflict | server |
    # bad_answer
    kind: str
    message: str
    status: int | None = None

    def __str__(self) -> str:
        return self.message


class ApiClient:
    """Synchronous client (Gradio runs callbacks in worker threads); one connection pool."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | None,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {HEADER: api_key.get_secret_value()} if api_key is not None else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport
        )
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, ui: UiSettings) -> ApiClient:
        return cls(ui.api_url, ui.api_key, ui.timeout_s)

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ reads

    def health(self) -> Json:
        return self._call("GET", "/healthz")

    def run_info(self) -> Json:
        """``/v1/run`` (paper or live); an ApiError ``not_found`` where the API lacks it."""
        return self._call("GET", "/v1/run")

    def signals(self) -> list[Json]:
        return self._call("GET", "/v1/signals")["signals"]

    def portfolio(self) -> Json:
        return self._call("GET", "/v1/portfolio")

    def orders(self, status: str | None = None, limit: int = 200) -> list[Json]:
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        return self._call("GET", "/v1/orders", params=params)["orders"]

    def fills(self, since: datetime | None = None, limit: int = 1000) -> list[Json]:
        return self._call("GET", "/v1/fills", params=_since(since, limit))["fills"]

    def equity(self, since: datetime | None = None, limit: int = 1000) -> list[Json]:
        return self._call("GET", "/v1/equity", params=_since(since, limit))["points"]

    def performance(self) -> Json:
        return self._call("GET", "/v1/performance")

    def risk(self) -> Json:
        return self._call("GET", "/v1/risk")

    def models(self) -> list[Json]:
        return self._call("GET", "/v1/models")["models"]

    def feeds(self) -> list[Json]:
        return self._call("GET", "/v1/feeds")["feeds"]

    def feed_control(self) -> list[Json]:
        """``/v1/feeds/control``: each asset class's feed, running or stopped."""
        return self._call("GET", "/v1/feeds/control")["classes"]

    def jobs(self) -> Json:
        """``/v1/jobs``: the kinds the worker can start and its jobs, newest first."""
        return self._call("GET", "/v1/jobs")

    def job(self, job_id: str) -> Json:
        return self._call("GET", f"/v1/jobs/{job_id}")

    def bars(self, ticker: str, limit: int = 300) -> list[Json]:
        return self._call("GET", f"/v1/bars/{ticker}", params={"limit": limit})["bars"]

    def headlines(self, ticker: str, limit: int = 20) -> list[Json]:
        return self._call("GET", f"/v1/headlines/{ticker}", params={"limit": limit})["headlines"]

    # ------------------------------------------------------------------ commands

    def halt(self, reason: str) -> Json:
        return self._call("POST", "/v1/risk/halt", json={"reason": reason})

    def resume(self) -> Json:
        return self._call("POST", "/v1/risk/resume")

    def set_reducing(self, on: bool) -> Json:
        return self._call("POST", "/v1/risk/reducing", json={"on": on})

    def promote(self, version: str) -> Json:
        return self._call("POST", "/v1/models/promote", json={"version": version})

    def stop_feed(self, asset_class: str) -> Json:
        return self._call("POST", f"/v1/feeds/{asset_class}/stop")

    def start_feed(self, asset_class: str) -> Json:
        return self._call("POST", f"/v1/feeds/{asset_class}/start")

    def start_job(self, kind: str) -> Json:
        return self._call("POST", "/v1/jobs", json={"kind": kind})

    # ------------------------------------------------------------------ the one request path

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json: Json | None = None,
    ) -> Any:
        where = f"{method} {path}"
        try:
            r = self._http.request(method, path, params=params, json=json)
        except httpx.TimeoutException:
            raise ApiError(
                "timeout",
                f"The signal API at {self.base_url} did not answer {where} within "
                f"{self.timeout_s:g} s: the worker may be overloaded or stuck.",
            ) from None
        except httpx.TransportError as exc:
            raise ApiError(
                "down",
                f"The signal API at {self.base_url} is not reachable ({type(exc).__name__}): "
                "is the live worker running? Start it with `python -m app live`.",
            ) from None
        if r.status_code >= 400:
            raise _error(r, where)
        try:
            return r.json()
        except ValueError:
            raise ApiError(
                "bad_answer",
                f"{where}: the API answered {r.status_code} without JSON",
                r.status_code,
            ) from None


def _since(since: datetime | None, limit: int) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if since is not None:
        if since.tzinfo is None:
            raise ValueError(f"since={since!r}: must carry a UTC offset")
        params["since"] = since.isoformat()
    return params


def _detail(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI validation errors
        parts = []
        for d in detail[:3]:
            if isinstance(d, dict):
                loc = ".".join(str(x) for x in d.get("loc", ()) if x != "body")
                parts.append(f"{loc}: {d.get('msg', '')}".strip(": "))
        return "; ".join(parts)
    return str(detail)[:300]


def _error(r: httpx.Response, where: str) -> ApiError:
    code = r.status_code
    detail = _detail(r)
    if code == 401:
        return ApiError(
            "unauthorized",
            "The API refused the panel's key (401): set APP_UI__API_KEY to one of the API's "
            "keys (APP_API__KEYS to operate, APP_API__READ_KEYS to watch).",
            code,
        )
    if code == 403:
        return ApiError(
            "forbidden",
            "This command needs an operate key (403): the panel's key has the read role only.",
            code,
        )
    if code == 404:
        return ApiError("not_found", f"{where}: not found (404): {detail}", code)
    if code == 422:
        return ApiError("invalid", f"{where}: the API rejected the input (422): {detail}", code)
    if code == 409:
        return ApiError("conflict", f"{where}: refused (409): {detail}", code)
    if code == 503:
        return ApiError("server", f"{where}: the API is unavailable (503): {detail}", code)
    return ApiError("server", f"{where}: the API failed ({code}): {detail}", code)
