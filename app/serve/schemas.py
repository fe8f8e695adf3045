"""Pydantic models of the v1 API: request bodies, responses, and the views -> JSON mapping.

They exist for the wire and the OpenAPI document (/docs); inside the system the frozen views of
``app.serve.view`` flow. Each ``of`` classmethod converts one view.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.models.registry import VersionInfo
from app.serve.state import SignalStatus
from app.serve.view import (
    EquityPoint,
    FeedStatus,
    FeedView,
    OrderView,
    PerformanceView,
    PortfolioView,
    Promotion,
    RiskView,
)
from app.types import (
    AssetClass,
    DecisionAction,
    Fill,
    OrderStatus,
    OrderType,
    RiskState,
    Side,
    SignalAction,
)

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
TICKER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ requests


def _non_blank(reason: str) -> str:
    """Stripped by the risk engine's rule (``str.strip()``, which also removes control
    characters such as ``\\x1f`` that pydantic's ``strip_whitespace`` keeps): a blank reason
    is a 422 here, not a 500 in the engine."""
    stripped = reason.strip()
    if not stripped:
        raise ValueError(f"reason={reason!r}: give a non-empty reason")
    return stripped


class HaltIn(_In):
    reason: Annotated[
        str, StringConstraints(min_length=1, max_length=200), AfterValidator(_non_blank)
    ]


class ReducingIn(_In):
    on: bool


class PromoteIn(_In):
    version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]


# ------------------------------------------------------------------ signals


class ProbsOut(_Out):
    up: float
    down: float
    flat: float


class SignalRiskOut(_Out):
    state: RiskState
    action: DecisionAction
    reasons: list[str]


class SignalOut(_Out):
    ticker: str
    signal: SignalAction
    confidence: float
    probs: ProbsOut
    model_version: str
    as_of: datetime = Field(description="open time of the bar the signal was computed on")
    computed_at: datetime
    age_s: float = Field(description="seconds since the signal's bar closed")
    stale: bool = Field(description="older than the stale limit (two bars by default)")
    risk: SignalRiskOut

    @classmethod
    def of(cls, s: SignalStatus) -> SignalOut:
        v = s.view
        return cls(
            ticker=v.ticker,
            signal=v.signal,
            confidence=v.confidence,
            probs=ProbsOut(up=v.probs.up, down=v.probs.down, flat=v.probs.flat),
            model_version=v.model_version,
            as_of=v.as_of,
            computed_at=v.computed_at,
            age_s=s.age_s,
            stale=s.stale,
            risk=SignalRiskOut(
                state=v.risk_state, action=v.risk_action, reasons=list(v.risk_reasons)
            ),
        )


class SignalsOut(_Out):
    signals: list[SignalOut]


# ------------------------------------------------------------------ account


class PositionOut(_Out):
    symbol: str
    qty: float
    avg_price: float
    last_price: float
    market_value: float
    unrealized_pnl: float
    opened_at: datetime
    stop_loss: float | None
    take_profit: float | None


class PortfolioOut(_Out):
    ts: datetime | None
    equity: float
    day_open_equity: float
    day_pnl: float
    day_drawdown: float
    gross_exposure: float | None
    net_exposure: float | None
    positions: list[PositionOut]

    @classmethod
    def of(cls, p: PortfolioView) -> PortfolioOut:
        positions = [PositionOut(**_fields(x)) for x in p.positions]
        fields = {**_fields(p), "positions": positions}
        for name in ("gross_exposure", "net_exposure"):  # NaN when equity <= 0
            fields[name] = fields[name] if math.isfinite(fields[name]) else None
        return cls(**fields)


class OrderOut(_Out):
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    type: OrderType
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    filled_qty: float
    avg_fill_price: float | None
    reduce_only: bool
    limit_price: float | None
    stop_loss: float | None
    take_profit: float | None

    @classmethod
    def of(cls, o: OrderView) -> OrderOut:
        return cls(**_fields(o))


class OrdersOut(_Out):
    orders: list[OrderOut]


class FillOut(_Out):
    fill_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    ts: datetime
    reason: str

    @classmethod
    def of(cls, f: Fill) -> FillOut:
        return cls(**_fields(f))


class FillsOut(_Out):
    fills: list[FillOut]


class EquityPointOut(_Out):
    ts: datetime
    equity: float

    @classmethod
    def of(cls, e: EquityPoint) -> EquityPointOut:
        return cls(ts=e.ts, equity=e.equity)


class EquityOut(_Out):
    points: list[EquityPointOut]


class PerformanceOut(_Out):
    calendar: AssetClass
    bars: int
    initial_equity: float
    final_equity: float
    total_return: float | None
    sharpe: float | None
    max_drawdown: float | None
    win_rate: float | None
    n_trades: int

    @classmethod
    def of(cls, p: PerformanceView) -> PerformanceOut:
        return cls(**_fields(p))


# ------------------------------------------------------------------ risk, models, feeds


class RiskOut(_Out):
    state: RiskState
    reasons: list[str]
    limits: dict[str, float | int | str]
    halt_until: datetime | None
    reducing_classes: list[AssetClass]

    @classmethod
    def of(cls, r: RiskView) -> RiskOut:
        return cls(
            state=r.state,
            reasons=list(r.reasons),
            limits=r.limits.model_dump(mode="json"),
            halt_until=r.halt_until,
            reducing_classes=list(r.reducing_classes),
        )


class ModelOut(_Out):
    version: str
    kind: str
    created_at: str
    symbols: list[str]
    metrics: dict[str, Any]
    promoted: bool

    @classmethod
    def of(cls, v: VersionInfo) -> ModelOut:
        return cls(
            version=v.version,
            kind=v.kind,
            created_at=v.created_at,
            symbols=list(v.symbols),
            metrics=v.metrics,
            promoted=v.promoted,
        )


class ModelsOut(_Out):
    models: list[ModelOut]


class PromotionOut(_Out):
    previous: str
    current: str

    @classmethod
    def of(cls, p: Promotion) -> PromotionOut:
        return cls(previous=p.previous, current=p.current)


class FeedOut(_Out):
    source: str
    asset_class: AssetClass
    symbols: list[str]
    last_bar_ts: datetime | None
    lag_s: float | None
    limit_s: float
    status: FeedStatus

    @classmethod
    def of(cls, f: FeedView) -> FeedOut:
        return cls(**{**_fields(f), "symbols": list(f.symbols)})


class FeedsOut(_Out):
    feeds: list[FeedOut]


class HealthOut(_Out):
    status: str


def _fields(obj: object) -> dict[str, Any]:
    """A slotted dataclass's fields, shallow (nested views are converted by the caller)."""
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}  # type: ignore[attr-defined]


def event_json(kind: str, payload: object) -> str:
    """The SSE ``data`` of an event payload."""
    model: BaseModel
    if isinstance(payload, SignalStatus):
        model = SignalOut.of(payload)
    elif isinstance(payload, Fill):
        model = FillOut.of(payload)
    elif isinstance(payload, RiskView):
        model = RiskOut.of(payload)
    elif isinstance(payload, Promotion):
        model = PromotionOut.of(payload)
    else:
        raise TypeError(f"event kind={kind!r}: no wire format for {type(payload).__name__}")
    return model.model_dump_json()
