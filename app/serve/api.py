"""The v1 signal API over a :class:`~app.serve.view.LiveView` (docs/LIVE.md).

``build_api`` returns a plain FastAPI app: run it with uvicorn, or wrap it later with Ray
Serve's ``@serve.ingress``; nothing here imports Ray. Every handler is async and never blocks:
GETs read memory only (signals are computed at bar close by the live loop, never on a read),
and commands that touch files run in a worker thread inside the view.
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AwareDatetime
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from app.config import Settings
from app.serve import schemas as s
from app.serve.auth import HEADER, OPERATE, READ, AuthMiddleware, KeyChecker
from app.serve.events import EventKind, Subscription, TooManySubscribers
from app.serve.metrics import ApiMetrics, MetricsMiddleware
from app.serve.state import SignalView
from app.serve.view import LiveView, OtherAssetClass, UnknownVersion
from app.types import OrderStatus

Ticker = Annotated[str, Path(pattern=s.TICKER_PATTERN, description="a configured ticker")]
Since = Annotated[
    AwareDatetime | None, Query(description="ISO 8601 with a UTC offset; rows with ts >= since")
]


def build_api(view: LiveView, settings: Settings) -> FastAPI:
    """The FastAPI app serving ``view``; ``settings.api`` must hold keys (see resolve_keys)."""
    api = settings.api
    checker = KeyChecker(api)
    metrics = ApiMetrics(view)
    page = api.max_page
    Limit = Annotated[int, Query(ge=1, le=page, description=f"at most {page} rows")]  # noqa: N806

    app = FastAPI(
        title="seed-trader signal API",
        version="1",
        description=f"Signals, account, risk and models of the live loop. Send {HEADER}.",
    )
    app.add_middleware(AuthMiddleware, checker=checker)  # innermost of the three
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(api.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=[HEADER, "Content-Type"],
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    v1 = APIRouter(prefix="/v1", dependencies=[READ])

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> s.HealthOut:
        """Liveness; public (no key)."""
        return s.HealthOut(status="ok")

    @app.get(
        "/metrics",
        tags=["ops"],
        dependencies=[READ],
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def prometheus() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @v1.get("/signals/{ticker}", tags=["signals"], responses={404: {"description": "unknown"}})
    async def signal(ticker: Ticker) -> s.SignalOut:
        """The latest signal of one ticker, its age and staleness, and the risk verdict."""
        if ticker not in view.tickers():
            raise HTTPException(404, f"unknown ticker={ticker!r}")
        status = view.signals.read(ticker)
        if status is None:
            raise HTTPException(404, f"no signal yet for ticker={ticker!r}")
        return s.SignalOut.of(status)

    @v1.get("/signals", tags=["signals"])
    async def signals() -> s.SignalsOut:
        """Every ticker's latest signal, aged at the same instant."""
        return s.SignalsOut(signals=[s.SignalOut.of(x) for x in view.signals.read_all()])

    @v1.get("/portfolio", tags=["account"])
    async def portfolio() -> s.PortfolioOut:
        """Positions, equity, day P&L, day drawdown and exposure at the last mark."""
        return s.PortfolioOut.of(view.portfolio())

    @v1.get("/orders", tags=["account"])
    async def orders(status: OrderStatus | None = None, limit: Limit = 100) -> s.OrdersOut:
        """Orders, newest first, optionally in one status."""
        return s.OrdersOut(orders=[s.OrderOut.of(o) for o in view.orders(status, limit)])

    @v1.get("/fills", tags=["account"])
    async def fills(since: Since = None, limit: Limit = page) -> s.FillsOut:
        """Fills with ts >= since, oldest first."""
        return s.FillsOut(fills=[s.FillOut.of(f) for f in view.fills(_utc(since), limit)])

    @v1.get("/equity", tags=["account"])
    async def equity(since: Since = None, limit: Limit = page) -> s.EquityOut:
        """The equity curve (one point per bar close), oldest first."""
        points = view.equity(_utc(since), limit)
        return s.EquityOut(points=[s.EquityPointOut.of(p) for p in points])

    @v1.get("/performance", tags=["account"])
    async def performance() -> s.PerformanceOut:
        """Sharpe, max drawdown, total return and win rate, by the backtest's metrics."""
        return s.PerformanceOut.of(view.performance())

    @v1.get("/risk", tags=["risk"])
    async def risk() -> s.RiskOut:
        """State, reasons, limits and when a drawdown halt lifts."""
        return s.RiskOut.of(view.risk())

    @v1.post("/risk/halt", tags=["risk"], dependencies=[OPERATE])
    async def halt(body: s.HaltIn) -> s.RiskOut:
        """Kill switch: no entries, flatten at the next bar, until resume."""
        return s.RiskOut.of(await view.halt(body.reason))

    @v1.post("/risk/resume", tags=["risk"], dependencies=[OPERATE])
    async def resume() -> s.RiskOut:
        """Clear the kill switch and REDUCING (a daily-drawdown halt stays until the next day)."""
        return s.RiskOut.of(await view.resume())

    @v1.post("/risk/reducing", tags=["risk"], dependencies=[OPERATE])
    async def reducing(body: s.ReducingIn) -> s.RiskOut:
        """REDUCING on or off: exits only."""
        return s.RiskOut.of(await view.set_reducing(body.on))

    @v1.get("/models", tags=["models"])
    async def models() -> s.ModelsOut:
        """Registry versions, oldest first; ``promoted`` marks the served one."""
        return s.ModelsOut(models=[s.ModelOut.of(m) for m in view.models()])

    @v1.post(
        "/models/promote",
        tags=["models"],
        dependencies=[OPERATE],
        responses={
            404: {"description": "unknown version"},
            422: {"description": "a version of another asset class"},
        },
    )
    async def promote(body: s.PromoteIn) -> s.PromotionOut:
        """Serve another registry version (of the account's asset class) from the next bar."""
        try:
            return s.PromotionOut.of(await view.promote(body.version))
        except UnknownVersion:
            raise HTTPException(404, f"unknown model version={body.version!r}") from None
        except OtherAssetClass as exc:
            raise HTTPException(422, str(exc)) from None

    @v1.get("/feeds", tags=["feeds"])
    async def feeds() -> s.FeedsOut:
        """Per source: the newest bar, the lag since it closed, ok / stale / waiting."""
        return s.FeedsOut(feeds=[s.FeedOut.of(f) for f in view.feeds()])

    @v1.get(
        "/stream",
        tags=["signals"],
        response_class=EventSourceResponse,
        responses={200: {"content": {"text/event-stream": {}}}, 503: {"description": "full"}},
    )
    async def stream(
        kinds: Annotated[list[EventKind] | None, Query()] = None,
        limit: Annotated[int | None, Query(ge=1, description="close after this many")] = None,
    ) -> EventSourceResponse:
        """Server-sent events (event: signal | fill | risk | model; id: a global sequence)."""
        try:
            sub = view.events.subscribe(kinds)
        except TooManySubscribers as exc:
            raise HTTPException(503, str(exc)) from None
        return EventSourceResponse(
            _events(view, sub, limit), ping=api.sse_ping_s, background=BackgroundTask(sub.close)
        )

    app.include_router(v1)
    app.state.metrics = metrics
    app.state.view = view
    return app


async def _events(
    view: LiveView, sub: Subscription, limit: int | None
) -> AsyncIterator[ServerSentEvent]:
    sent = 0
    try:
        while limit is None or sent < limit:
            event = await sub.next()
            payload = event.payload
            if isinstance(payload, SignalView):
                payload = view.signals.status(payload)
            data = s.event_json(event.kind, payload)
            yield ServerSentEvent(data=data, event=event.kind.value, id=str(event.seq))
            sent += 1
    finally:
        sub.close()


def _utc(ts: datetime | None) -> datetime | None:
    """An aware datetime in UTC; instants beyond datetime's range clamp to its ends."""
    if ts is None:
        return None
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC) if ts.year > 1 else datetime.min.replace(tzinfo=UTC)
