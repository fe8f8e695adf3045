"""Adapters from the outside world (files, exchanges, brokers) to the store's frames.

Each adapter converts its wire format at the edge; every price frame then goes through
:func:`app.schema.bars.validate_bars`. See docs/SOURCES.md.
"""

from __future__ import annotations


class SourceUnavailable(ConnectionError):  # noqa: N818 - the name says what the caller handles
    """A data source could not be reached (after the allowed retries); the message names it."""
