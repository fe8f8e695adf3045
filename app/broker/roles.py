"""Why an order exists (its role) and what a fill of each role is booked as."""

from __future__ import annotations

from app.types import DecisionAction

ROLE_OF_ACTION = {
    DecisionAction.OPEN_LONG: "entry",
    DecisionAction.OPEN_SHORT: "entry",
    DecisionAction.CLOSE: "close",
    DecisionAction.FLATTEN_ALL: "flatten",
}
FILL_REASON = {
    "entry": "entry",
    "close": "signal_close",
    "flatten": "flatten",
    "sl": "stop_loss",
    "tp": "take_profit",
    "external": "external",
}
LEGS = ("sl", "tp")
