"""The order lifecycle: which status may follow which, and the engine's record of one order.

PENDING_SUBMIT -> SUBMITTED -> ACCEPTED -> PARTIALLY_FILLED -> FILLED; CANCELED, REJECTED,
EXPIRED end it. UNKNOWN is "sent, outcome not known" (a timeout): only a lookup at the venue
resolves it. A venue may skip steps (a market order comes back FILLED from SUBMITTED), so the
table allows every forward jump; it never allows leaving a terminal status, or going back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from app.types import Order, OrderStatus

log = logging.getLogger(__name__)

_S = OrderStatus
_FINAL = (_S.FILLED, _S.CANCELED, _S.REJECTED, _S.EXPIRED)
_LIVE = (_S.ACCEPTED, _S.PARTIALLY_FILLED, *_FINAL)

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING_SUBMIT: frozenset({_S.SUBMITTED, _S.UNKNOWN, *_LIVE}),
    _S.SUBMITTED: frozenset({_S.UNKNOWN, *_LIVE}),
    _S.UNKNOWN: frozenset({_S.SUBMITTED, *_LIVE}),
    _S.ACCEPTED: frozenset({_S.UNKNOWN, _S.PARTIALLY_FILLED, *_FINAL}),
    _S.PARTIALLY_FILLED: frozenset({_S.UNKNOWN, _S.PARTIALLY_FILLED, *_FINAL}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}


def can_transition(old: OrderStatus, new: OrderStatus) -> bool:
    """Whether ``old -> new`` is legal (staying in a non-terminal status is always fine)."""
    return new is old and not old.terminal or new in TRANSITIONS[old]


class IllegalTransition(ValueError):  # noqa: N818 - reads better at the call site
    """An order status change the table refuses."""


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """What the engine knows about one order; replaced, never mutated, on every change.

    ``role`` says why it exists: entry, close, flatten, or a bracket leg (sl / tp) whose
    ``parent`` is the entry's client id. ``external``: found at the venue, not sent by us.
    """

    order: Order
    status: OrderStatus = OrderStatus.PENDING_SUBMIT
    filled_qty: float = 0.0
    avg_fill_price: float | None = None
    venue_order_id: str = ""
    attempts: int = 0
    updated: datetime | None = None
    message: str = ""
    role: str = "entry"
    parent: str = ""
    external: bool = False

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id

    @property
    def symbol(self) -> str:
        return self.order.symbol

    @property
    def open(self) -> bool:
        return not self.status.terminal

    @property
    def remaining(self) -> float:
        return max(self.order.qty - self.filled_qty, 0.0)

    def moved(self, status: OrderStatus, ts: datetime, **changes: object) -> OrderRecord:
        """A copy in ``status``; IllegalTransition (logged) when the table refuses it."""
        if not can_transition(self.status, status):
            log.error(
                "order %s: illegal transition %s -> %s refused",
                self.client_order_id,
                self.status.value,
                status.value,
            )
            raise IllegalTransition(
                f"order {self.client_order_id}: {self.status.value} -> {status.value} is illegal"
            )
        return replace(self, status=status, updated=ts, **changes)  # type: ignore[arg-type]

    def updated_with(self, ts: datetime, **changes: object) -> OrderRecord:
        """A copy with changed fields and the same status."""
        return replace(self, updated=ts, **changes)  # type: ignore[arg-type]
