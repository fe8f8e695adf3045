"""One small HTTP GET helper for the side-input sources (feeds, JSON APIs, CDN files).

Why one helper: every source needs the same three things, and getting them wrong in one place
is easier to see than in seven. (1) A timeout on every request. (2) Bounded retries with
exponential backoff on what is worth retrying (connection failures, timeouts, HTTP 429 and
5xx), honouring ``Retry-After`` up to the backoff cap. (3) Errors that name the URL, so a
failure says which endpoint and why. Request headers are never logged or put in an error
message: they may carry a bearer token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from app.sources import SourceUnavailable

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
DEFAULT_USER_AGENT = "seed-trader/0.1 (side-input ingest)"


class RequestRejected(SourceUnavailable):
    """The server answered with a status that retrying will not fix (4xx other than 429)."""

    def __init__(self, url: str, status: int, detail: str) -> None:
        self.url = url
        self.status = status
        super().__init__(f"GET {url}: HTTP {status} {detail}".rstrip())


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """Timeout and retry budget; the defaults suit public APIs polled a few times a day."""

    timeout_s: float = 15.0
    retries: int = 3  # extra attempts after the first
    backoff_s: float = 1.0  # first wait; doubles each retry
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"HttpPolicy.timeout_s={self.timeout_s!r}: must be > 0")
        if self.retries < 0:
            raise ValueError(f"HttpPolicy.retries={self.retries!r}: must be >= 0")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("HttpPolicy backoff values must be >= 0")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        wait = self.backoff_s * 2**attempt
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_backoff_s)


class HttpClient:
    """GET with timeouts and bounded retries; one connection pool for a whole ingest run."""

    def __init__(
        self,
        policy: HttpPolicy | None = None,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy or HttpPolicy()
        self._sleep = sleep
        self._client = httpx.Client(
            timeout=self.policy.timeout_s,
            headers={"User-Agent": user_agent},
            follow_redirects=True,
        )
        self.requests = 0  # attempts made, retries included (for summaries and tests)

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The response of a successful GET (2xx), after at most ``policy.retries`` retries.

        Raises RequestRejected for a 4xx (other than 429) at once, and SourceUnavailable when
        the last attempt still failed; both name the URL (without the headers).
        """
        shown = _display_url(url, params)
        attempts = self.policy.retries + 1
        for attempt in range(attempts):
            self.requests += 1
            retry_after: float | None = None
            try:
                response = self._client.get(url, params=params, headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc or 'no answer'}"
            else:
                if response.is_success:
                    return response
                if response.status_code not in RETRY_STATUS:
                    raise RequestRejected(shown, response.status_code, _snippet(response))
                problem = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
            if attempt + 1 == attempts:
                raise SourceUnavailable(f"GET {shown}: {problem} (after {attempts} attempts)")
            wait = self.policy.delay(attempt, retry_after)
            log.warning(
                "GET %s: %s; retry %d/%d in %.2fs",
                shown,
                problem,
                attempt + 1,
                self.policy.retries,
                wait,
            )
            self._sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    def get_bytes(self, url: str, **kw: Any) -> bytes:
        return self.get(url, **kw).content

    def get_json(self, url: str, **kw: Any) -> Any:
        """Decoded JSON; a body that is not JSON is a SourceUnavailable naming the URL."""
        response = self.get(url, **kw)
        try:
            return response.json()
        except ValueError as exc:
            shown = _display_url(url, kw.get("params"))
            raise SourceUnavailable(
                f"GET {shown}: answer is not JSON ({exc}); starts {_snippet(response)!r}"
            ) from None


def _display_url(url: str, params: Mapping[str, Any] | None) -> str:
    return str(httpx.URL(url, params=params)) if params else url


def _snippet(response: httpx.Response, limit: int = 160) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date, or absent: use the backoff
