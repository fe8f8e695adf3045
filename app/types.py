"""Frozen domain types shared by every layer.

They check their own invariants when built, so a wrong value fails where it enters the
system, with an error that names the field and the value. Stdlib only.

Time: every timestamp is a timezone-aware UTC ``datetime``; naive datetimes are refused.
A bar is stamped with its open time and covers ``[ts, ts + 5m)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

BAR_INTERVAL = timedelta(minutes=5)
NS_PER_SECOND = 1_000_000_000
BAR_NS = int(BAR_INTERVAL.total_seconds()) * NS_PER_SECOND  # one 5-minute bar in nanoseconds


class InvalidField(ValueError):  # noqa: N818 - reads better at the call site
    """A value that breaks a domain invariant; ``reason`` is a short machine-readable code."""

    def __init__(self, type_name: str, field_name: str, value: object, reason: str, why: str):
        self.type_name = type_name
        self.field = field_name
        self.value = value
        self.reason = reason
        super().__init__(f"{type_name}.{field_name}={value!r}: {why}")


class AssetClass(StrEnum):
    CRYPTO = "crypto"
    STOCKS = "stocks"
    FOREX = "forex"


class SignalAction(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"


class OrderStatus(StrEnum):
    """Where an order is in its life. Terminal: FILLED, CANCELED, REJECTED, EXPIRED.

    UNKNOWN means we sent it and do not know whether the venue has it (a timeout, a dropped
    connection): it is resolved by asking the venue for its client id, never by resending.
    The legal transitions live in ``app.broker.order_state``.
    """

    PENDING_SUBMIT = "PENDING_SUBMIT"
    SUBMITTED = "SUBMITTED"
    UNKNOWN = "UNKNOWN"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL_ORDER_STATUSES


_TERMINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class RiskState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class DecisionAction(StrEnum):
    HOLD = "HOLD"
    OPEN_LONG = "OPEN_LONG"
    OPEN_SHORT = "OPEN_SHORT"
    CLOSE = "CLOSE"
    FLATTEN_ALL = "FLATTEN_ALL"


# News topics the simulator writes, the sentiment model scores and the features aggregate.
NEWS_TOPICS: tuple[str, ...] = (
    "regulatory_risk",
    "product_launch",
    "earnings",
    "security_breach",
    "macro_policy",
    "partnership_ma",
)


# --------------------------------------------------------------------------- time helpers


def require_utc(type_name: str, field_name: str, value: object) -> datetime:
    """Return ``value`` if it is an aware datetime in UTC, else raise InvalidField."""
    if not isinstance(value, datetime):
        raise InvalidField(type_name, field_name, value, "bad_timestamp", "not a datetime")
    offset = value.utcoffset()
    if offset is None:
        raise InvalidField(type_name, field_name, value, "bad_timestamp", "naive datetime")
    if offset != timedelta(0):
        raise InvalidField(type_name, field_name, value, "bad_timestamp", "not UTC")
    return value


def to_ns(ts: datetime) -> int:
    """UTC datetime -> int64 nanoseconds since the epoch (exact to the microsecond)."""
    require_utc("time", "ts", ts)
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000


def from_ns(ns: int) -> datetime:
    """int64 nanoseconds since the epoch -> UTC datetime (sub-microsecond part dropped)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(ns) // 1000)


def _finite(type_name: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidField(type_name, name, value, "unparseable", "not a number")
    if not math.isfinite(value):
        raise InvalidField(type_name, name, value, "nan", "not finite")
    return float(value)


def _positive(type_name: str, name: str, value: float) -> float:
    value = _finite(type_name, name, value)
    if value <= 0:
        raise InvalidField(type_name, name, value, "nonpositive", "must be > 0")
    return value


def _probability(type_name: str, name: str, value: float) -> float:
    value = _finite(type_name, name, value)
    if not 0.0 <= value <= 1.0:
        raise InvalidField(type_name, name, value, "out_of_range", "must be in [0, 1]")
    return value


def _symbol(type_name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(type_name, "symbol", value, "bad_symbol", "empty symbol")
    return value


# --------------------------------------------------------------------------- market data


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar stamped with its open time; known at ``ts + interval``."""

    symbol: str
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __post_init__(self) -> None:
        name = "Bar"
        _symbol(name, self.symbol)
        require_utc(name, "ts", self.ts)
        for f in ("open", "high", "low", "close"):
            _positive(name, f, getattr(self, f))
        volume = _finite(name, "volume", self.volume)
        if volume < 0:
            raise InvalidField(name, "volume", volume, "negative_volume", "must be >= 0")
        if self.high < max(self.open, self.close):
            raise InvalidField(
                name,
                "high",
                self.high,
                "high_low",
                f"below max(open, close)={max(self.open, self.close)}",
            )
        if self.low > min(self.open, self.close):
            raise InvalidField(
                name,
                "low",
                self.low,
                "high_low",
                f"above min(open, close)={min(self.open, self.close)}",
            )

    @property
    def ts_ns(self) -> int:
        return to_ns(self.ts)

    @property
    def close_time(self) -> datetime:
        """When the bar is known (its close), for a 5-minute bar."""
        return self.ts + BAR_INTERVAL


@dataclass(frozen=True, slots=True)
class NewsItem:
    """A headline or post; usable from ``published_at`` on, never before."""

    id: str
    published_at: datetime
    source: str
    title: str
    body: str = ""
    symbols: tuple[str, ...] = ()
    url: str = ""
    topic: str = ""
    true_sentiment: float | None = None  # only the simulator knows it; never a model input

    def __post_init__(self) -> None:
        require_utc("NewsItem", "published_at", self.published_at)
        if not self.id:
            raise InvalidField("NewsItem", "id", self.id, "bad_id", "empty id")
        if not (self.title or self.body):
            raise InvalidField("NewsItem", "title", self.title, "empty_text", "no title or body")
        if self.true_sentiment is not None and not -1.0 <= self.true_sentiment <= 1.0:
            raise InvalidField(
                "NewsItem", "true_sentiment", self.true_sentiment, "out_of_range", "not in [-1, 1]"
            )

    @property
    def text(self) -> str:
        return f"{self.title}. {self.body}".strip(". ") if self.body else self.title


@dataclass(frozen=True, slots=True)
class MacroPoint:
    """A macro series value (e.g. Fear & Greed) for the period starting at ``ts``.

    ``published_at`` is when the value became public; features use it from then on only.
    """

    name: str
    ts: datetime
    published_at: datetime
    value: float

    def __post_init__(self) -> None:
        require_utc("MacroPoint", "ts", self.ts)
        require_utc("MacroPoint", "published_at", self.published_at)
        if self.published_at < self.ts:  # public before its period began: a look-ahead
            raise InvalidField(
                "MacroPoint",
                "published_at",
                self.published_at,
                "published_before_ts",
                f"before ts={self.ts}",
            )
        _finite("MacroPoint", "value", self.value)
        if not self.name:
            raise InvalidField("MacroPoint", "name", self.name, "bad_name", "empty name")


@dataclass(frozen=True, slots=True)
class FlowPoint:
    """An institutional / on-chain flow observation (block trade, net exchange flow, ...)."""

    symbol: str
    kind: str
    ts: datetime
    published_at: datetime
    value: float

    def __post_init__(self) -> None:
        _symbol("FlowPoint", self.symbol)
        require_utc("FlowPoint", "ts", self.ts)
        require_utc("FlowPoint", "published_at", self.published_at)
        if self.published_at < self.ts:  # public before its period began: a look-ahead
            raise InvalidField(
                "FlowPoint",
                "published_at",
                self.published_at,
                "published_before_ts",
                f"before ts={self.ts}",
            )
        _finite("FlowPoint", "value", self.value)
        if not self.kind:
            raise InvalidField("FlowPoint", "kind", self.kind, "bad_kind", "empty kind")


# --------------------------------------------------------------------------- signals, orders


@dataclass(frozen=True, slots=True)
class Probabilities:
    """Calibrated class probabilities, ordered [P(UP), P(DOWN), P(FLAT)]."""

    up: float
    down: float
    flat: float

    def __post_init__(self) -> None:
        for f in ("up", "down", "flat"):
            _probability("Probabilities", f, getattr(self, f))
        total = self.up + self.down + self.flat
        if abs(total - 1.0) > 1e-6:
            raise InvalidField("Probabilities", "sum", total, "out_of_range", "must sum to 1")


@dataclass(frozen=True, slots=True)
class Signal:
    """A model's view of one ticker, computed on the bar that opened at ``ts``."""

    ticker: str
    ts: datetime
    action: SignalAction
    confidence: float
    probs: Probabilities | None = None
    model_version: str = ""

    def __post_init__(self) -> None:
        _symbol("Signal", self.ticker)
        require_utc("Signal", "ts", self.ts)
        if not isinstance(self.action, SignalAction):
            raise InvalidField("Signal", "action", self.action, "bad_signal", "not BUY/SELL/HOLD")
        _probability("Signal", "confidence", self.confidence)


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the risk engine approved it. Never mutated: fills are separate records."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    ts: datetime
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    reduce_only: bool = False

    def __post_init__(self) -> None:
        name = "Order"
        if not self.client_order_id:
            raise InvalidField(name, "client_order_id", self.client_order_id, "bad_id", "empty")
        _symbol(name, self.symbol)
        require_utc(name, "ts", self.ts)
        _positive(name, "qty", self.qty)
        if self.type is OrderType.LIMIT and self.limit_price is None:
            raise InvalidField(name, "limit_price", None, "missing", "LIMIT needs a limit price")
        if self.type is OrderType.STOP and self.stop_price is None:
            raise InvalidField(name, "stop_price", None, "missing", "STOP needs a stop price")
        for f in ("limit_price", "stop_price", "stop_loss", "take_profit"):
            v = getattr(self, f)
            if v is not None:
                _positive(name, f, v)


@dataclass(frozen=True, slots=True)
class Fill:
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    ts: datetime
    reason: str = "entry"  # entry | exit | stop_loss | take_profit | flatten | ...
    fill_id: str = ""  # the venue's trade id (unique per venue); "" for backtest fills

    def __post_init__(self) -> None:
        require_utc("Fill", "ts", self.ts)
        _positive("Fill", "qty", self.qty)
        _positive("Fill", "price", self.price)
        if _finite("Fill", "fee", self.fee) < 0:
            raise InvalidField("Fill", "fee", self.fee, "negative", "must be >= 0")


@dataclass(frozen=True, slots=True)
class Position:
    """An open position; ``qty`` is signed (long > 0, short < 0)."""

    symbol: str
    qty: float
    avg_price: float
    opened_at: datetime
    stop_loss: float | None = None
    take_profit: float | None = None

    def __post_init__(self) -> None:
        _symbol("Position", self.symbol)
        require_utc("Position", "opened_at", self.opened_at)
        _positive("Position", "avg_price", self.avg_price)
        if _finite("Position", "qty", self.qty) == 0:
            raise InvalidField("Position", "qty", self.qty, "zero", "a position has qty != 0")

    @property
    def side(self) -> Side:
        return Side.BUY if self.qty > 0 else Side.SELL

    def market_value(self, price: float) -> float:
        return self.qty * price

    def unrealized_pnl(self, price: float) -> float:
        return self.qty * (price - self.avg_price)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """What the risk engine decided for one signal, and every reason why."""

    ts: datetime
    symbol: str
    action: DecisionAction
    state: RiskState
    orders: tuple[Order, ...] = ()
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        require_utc("RiskDecision", "ts", self.ts)

    @property
    def approved(self) -> bool:
        return bool(self.orders)
