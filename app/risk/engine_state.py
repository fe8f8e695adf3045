"""The risk engine's persisted state (``RiskEngine.to_state`` / ``from_state``): its keys, its
version, and the checks that reject a wrong file by naming the key and value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.types import require_utc

STATE_VERSION = 1
STATE_KEYS = frozenset(
    {
        "version",
        "kill_reason",
        "reducing",
        "halt_until",
        "flatten_pending",
        "order_times_ns",
        "recent_order_ids",
    }
)


def parse_state(state: dict[str, Any]) -> tuple[str | None, datetime | None]:
    """Validate ``state``; return its kill reason and parsed ``halt_until`` (ValueError names
    the wrong or missing key)."""
    keys = set(state)
    if keys != STATE_KEYS:
        raise ValueError(
            f"risk state keys: missing {sorted(STATE_KEYS - keys)}, "
            f"unknown {sorted(keys - STATE_KEYS)}"
        )
    if state["version"] != STATE_VERSION:
        raise ValueError(f"risk state version={state['version']!r}: expected {STATE_VERSION}")
    kill_reason = state["kill_reason"]
    if kill_reason is not None and (not isinstance(kill_reason, str) or not kill_reason):
        raise ValueError(f"risk state kill_reason={kill_reason!r}: expected a string or null")
    for flag in ("reducing", "flatten_pending"):
        if not isinstance(state[flag], bool):
            raise ValueError(f"risk state {flag}={state[flag]!r}: expected true/false")
    halt_until = state["halt_until"]
    if halt_until is not None:
        try:
            halt_until = require_utc("risk state", "halt_until", datetime.fromisoformat(halt_until))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"risk state halt_until={halt_until!r}: {exc}") from exc
    return kill_reason, halt_until
