"""The latest signal per ticker, as the API serves it, and its staleness rule.

Signals are computed once per bar close by the live loop and kept here; an API read never runs
the model. A signal computed on the bar that opened at ``as_of`` is known from the bar's close
(``as_of + BAR_INTERVAL``); its age is measured from then on the injected clock, and it is
*stale* once that age exceeds ``stale_bars`` bar intervals (two by default): the loop has then
missed at least two bar closes for that ticker, and the risk layer must open nothing on it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.clock import Clock
from app.risk.engine import PORTFOLIO
from app.types import (
    BAR_INTERVAL,
    DecisionAction,
    InvalidField,
    Probabilities,
    RiskDecision,
    RiskState,
    Signal,
    SignalAction,
    require_utc,
)


@dataclass(frozen=True, slots=True)
class SignalView:
    """One ticker's latest signal with the risk layer's verdict on it."""

    ticker: str
    signal: SignalAction
    confidence: float
    probs: Probabilities
    model_version: str
    as_of: datetime  # open time of the bar the signal was computed on
    computed_at: datetime
    risk_state: RiskState
    risk_action: DecisionAction
    risk_reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require_utc("SignalView", "as_of", self.as_of)
        require_utc("SignalView", "computed_at", self.computed_at)
        if not isinstance(self.probs, Probabilities):
            raise InvalidField("SignalView", "probs", self.probs, "missing", "needs Probabilities")

    @classmethod
    def from_decision(
        cls, signal: Signal, decision: RiskDecision, computed_at: datetime
    ) -> SignalView:
        """The view of ``signal`` and the risk decision taken on it (same ticker and bar).

        The decision may be portfolio-wide (symbol ``PORTFOLIO``): a kill switch pressed, or
        the daily drawdown crossed, between the bar's mark and this signal's decision answers
        the signal with FLATTEN_ALL."""
        if signal.probs is None:
            raise InvalidField("Signal", "probs", None, "missing", "the API serves probabilities")
        if decision.symbol not in (signal.ticker, PORTFOLIO):
            raise InvalidField(
                "RiskDecision",
                "symbol",
                decision.symbol,
                "mismatch",
                f"decision for another ticker than Signal.ticker={signal.ticker!r}",
            )
        return cls(
            ticker=signal.ticker,
            signal=signal.action,
            confidence=signal.confidence,
            probs=signal.probs,
            model_version=signal.model_version,
            as_of=signal.ts,
            computed_at=computed_at,
            risk_state=decision.state,
            risk_action=decision.action,
            risk_reasons=decision.reasons,
        )

    @property
    def known_at(self) -> datetime:
        """The close of the signal's bar: from when the signal exists."""
        return self.as_of + BAR_INTERVAL


@dataclass(frozen=True, slots=True)
class SignalStatus:
    """A signal as read at one instant: its age and whether it is stale."""

    view: SignalView
    age_s: float
    stale: bool


class SignalBook:
    """Latest :class:`SignalView` per ticker; written by the live loop, read by the API.

    A signal older than the one held for its ticker is ignored (a late duplicate after a
    restart must not replace a newer one). Reads and writes are safe across threads.
    """

    def __init__(self, clock: Clock, stale_bars: int = 2) -> None:
        if isinstance(stale_bars, bool) or not isinstance(stale_bars, int) or stale_bars < 1:
            raise InvalidField(
                "SignalBook", "stale_bars", stale_bars, "out_of_range", "must be >= 1"
            )
        self.clock = clock
        self.stale_after: timedelta = stale_bars * BAR_INTERVAL
        self._latest: dict[str, SignalView] = {}
        self._lock = threading.Lock()

    def put(self, view: SignalView) -> bool:
        """Keep ``view`` if it is at least as new as the held one; return whether it was kept."""
        with self._lock:
            held = self._latest.get(view.ticker)
            if held is not None and view.as_of < held.as_of:
                return False
            self._latest[view.ticker] = view
            return True

    def get(self, ticker: str) -> SignalView | None:
        return self._latest.get(ticker)

    def tickers(self) -> tuple[str, ...]:
        return tuple(sorted(self._latest))

    def __len__(self) -> int:
        return len(self._latest)

    def status(self, view: SignalView, now: datetime | None = None) -> SignalStatus:
        """Age (seconds since the bar closed, never negative) and staleness at ``now``."""
        age = (self.clock.now() if now is None else now) - view.known_at
        age = max(age, timedelta(0))
        return SignalStatus(view, age.total_seconds(), age > self.stale_after)

    def read(self, ticker: str) -> SignalStatus | None:
        view = self._latest.get(ticker)
        return None if view is None else self.status(view)

    def read_all(self) -> tuple[SignalStatus, ...]:
        """Every ticker's signal, sorted by ticker, all aged at the same instant."""
        now = self.clock.now()
        with self._lock:
            views = sorted(self._latest.values(), key=lambda v: v.ticker)
        return tuple(self.status(v, now) for v in views)
