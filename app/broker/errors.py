"""Errors a broker raises; the engine's retry and reconciliation policy is keyed on the class."""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every broker error."""


class VenueUnavailable(BrokerError):
    """Network family: timeout, disconnect, 5xx, rate limit. The outcome is unknown."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OrderRejected(BrokerError):
    """The venue refused the order. Final; the message is the venue's."""


class BrokerConnectError(BrokerError):
    """Nothing answers at the configured address."""


class MissingCredentials(BrokerError):
    """A venue that needs keys was started without them; the message names the variables."""
