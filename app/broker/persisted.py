"""``PersistedBroker``: the venue as the ExecutionEngine sees it, journal flushed before each call.

The money-path rule is "every state change of an order is persisted before the next venue call".
The engine records changes in the ``Journal``'s buffer; this wrapper flushes that buffer before
it lets any coroutine of the broker run, so the rule holds by construction (no call site can
forget it) while the changes made between two venue calls cost one store write, not one each.
Attributes that are not coroutines (``name``, ``capabilities``, the paper venue's ``pf``) pass
through unchanged.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from app.broker.journal import Journal
from app.broker.protocol import Broker


class PersistedBroker:
    """Wraps a ``Broker``; every awaited call starts with ``journal.flush()``."""

    def __init__(self, broker: Broker, journal: Journal) -> None:
        self.inner = broker
        self.journal = journal
        self._wrapped: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "journal", "_wrapped"):  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        attr = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        wrapped = self._wrapped.get(name)
        if wrapped is None or wrapped.__wrapped__ != attr:
            journal = self.journal

            @functools.wraps(attr)
            async def call(*args: Any, **kwargs: Any) -> Any:
                journal.flush()
                return await attr(*args, **kwargs)

            self._wrapped[name] = wrapped = call
        return wrapped
