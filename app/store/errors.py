"""Store failures that callers can act on (retry later, hand rows to another store)."""

from __future__ import annotations

import pandas as pd


class StoreError(RuntimeError):
    """The backend refused a request (bad SQL, schema conflict); the message carries its reply."""


class StoreUnavailable(StoreError):  # noqa: N818 - the name says what the caller must handle
    """The backend could not be reached (or its file is locked by another process).

    ``pending_rows`` holds every row of the failed write that the backend did NOT acknowledge,
    in the order given, so the caller can retry them later: nothing is dropped silently.
    It is empty for reads and schema calls.
    """

    def __init__(
        self,
        address: str,
        detail: str,
        *,
        table: str | None = None,
        pending_rows: pd.DataFrame | None = None,
    ) -> None:
        self.address = address
        self.table = table
        self.pending_rows = pending_rows if pending_rows is not None else pd.DataFrame()
        pending = f"; {len(self.pending_rows)} {table} rows not acknowledged" if table else ""
        super().__init__(f"store at {address} unavailable: {detail}{pending}")
