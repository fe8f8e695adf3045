"""Prometheus metrics of the API: requests by route and status, latency, and live gauges.

Each app gets its own ``CollectorRegistry`` (several apps in one process, as in tests, must
not collide in the global one). Routes are labelled by their template (``/v1/signals/{ticker}``)
and unmatched paths as ``unmatched``, so a scanner cannot blow up the label set.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.serve.view import LiveView


class ApiMetrics:
    def __init__(self, view: LiveView) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "api_requests",
            "HTTP requests answered",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "api_request_seconds",
            "Time to the response's first byte",
            ("method", "route"),
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        gauges: dict[str, tuple[str, Callable[[], float]]] = {
            "api_signals": ("Tickers with a signal", lambda: len(view.signals)),
            "api_stale_signals": (
                "Tickers whose signal is stale",
                lambda: sum(s.stale for s in view.signals.read_all()),
            ),
            "api_stream_subscribers": ("Open event streams", lambda: view.events.subscribers),
            "api_events_published": ("Events published", lambda: view.events.published),
            "api_events_dropped": ("Events dropped by full buffers", lambda: view.events.dropped),
        }
        for name, (doc, fn) in gauges.items():
            Gauge(name, doc, registry=self.registry).set_function(fn)


class MetricsMiddleware:
    """Pure ASGI middleware (streams pass through untouched)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        code = 500
        timed = False

        async def wrapped(message: Message) -> None:
            nonlocal code, timed
            if message["type"] == "http.response.start":
                code = message["status"]
                if not timed:
                    timed = True
                    self.metrics.latency.labels(scope["method"], _route(scope)).observe(
                        time.perf_counter() - start
                    )
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            self.metrics.requests.labels(scope["method"], _route(scope), str(code)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
