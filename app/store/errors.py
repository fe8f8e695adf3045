"""Store failures that callers can act on (retry later, hand rows to another store)."""

from __future__ import annotations

import pandas as pd


class StoreError(RuntimeError):
    """The backend refused a request (bad SQL, rejected rows); the message carries its reply.

    For a failed write, ``pending_rows`` holds every row of the batch that the backend did
    NOT acknowledge, in the order given, so nothing is dropped silently; ``table`` names
    where they were going. Both are empty/None for reads and schema calls.
    """

    def __init__(
        self, message: str, *, table: str | None = None, pending_rows: pd.DataFrame | None = None
    ) -> None:
        self.table = table
        self.pending_rows = pending_rows if pending_rows is not None else pd.DataFrame()
        if table is not None and len(self.pending_rows):
            message = f"{message}; {len(self.pending_rows)} {table} rows not acknowledged"
        super().__init__(message)


class StoreUnavailable(StoreError):  # noqa: N818 - the name says what the caller must handle
    """The backend could not be reached, or its file is locked by another process."""

    def __init__(
        self,
        address: str,
        detail: str,
        *,
        table: str | None = None,
        pending_rows: pd.DataFrame | None = None,
    ) -> None:
        self.address = address
        self.detail = detail
        super().__init__(
            f"store at {address} unavailable: {detail}", table=table, pending_rows=pending_rows
        )
