"""QuestDB's HTTP ``/exec`` endpoint: run SQL, get typed pandas frames back.

This is the store's read path (and its DDL path). It needs nothing but port 9000, the same
port ILP/HTTP writes use, and it is what the loopback test server speaks.
"""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd

from app.store.errors import StoreError, StoreUnavailable


class ExecClient:
    """A small synchronous client for ``GET /exec?query=...`` (JSON)."""

    def __init__(self, base_url: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def execute(self, sql: str) -> dict[str, Any]:
        """Run one statement (DDL or a small SELECT) and return QuestDB's JSON answer."""
        return self._get({"query": sql})

    def query(self, sql: str) -> pd.DataFrame:
        """Run a SELECT and return typed columns (QuestDB streams every row, no paging)."""
        answer = self._get({"query": sql})
        return frame_from_exec(answer.get("columns", []), answer.get("dataset", []))

    def close(self) -> None:
        self._http.close()

    def _get(self, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = self._http.get("/exec", params=params)
        except httpx.TransportError as exc:
            raise StoreUnavailable(self.base_url, f"GET /exec failed: {exc!r}") from exc
        try:
            answer = response.json()
        except ValueError:
            raise StoreError(
                f"{self.base_url}/exec answered HTTP {response.status_code} with non-JSON "
                f"body {response.text[:200]!r}"
            ) from None
        if response.status_code != 200 or "error" in answer:
            raise StoreError(
                f"{self.base_url}/exec rejected {params['query']!r}: "
                f"{answer.get('error', response.text[:200])} (position {answer.get('position')})"
            )
        return answer


def frame_from_exec(columns: list[dict[str, str]], rows: list[list[Any]]) -> pd.DataFrame:
    """QuestDB's ``columns``/``dataset`` JSON -> a frame with our dtypes.

    TIMESTAMP (ISO text, UTC) -> datetime64[ns, UTC]; DOUBLE/FLOAT (null = NaN) -> float64;
    BOOLEAN -> bool; integer types -> int64 (float64 when null occurs); text stays text.
    """
    names = [c["name"] for c in columns]
    frame = pd.DataFrame(rows, columns=names) if rows else pd.DataFrame(columns=names)
    for column in columns:
        name, kind = column["name"], column["type"].upper()
        values = frame[name]
        if kind.startswith("TIMESTAMP") or kind == "DATE":
            frame[name] = pd.to_datetime(values, utc=True, format="ISO8601").astype(
                "datetime64[ns, UTC]"
            )
        elif kind in ("DOUBLE", "FLOAT"):
            frame[name] = pd.to_numeric(values, errors="raise").astype("float64")
        elif kind == "BOOLEAN":
            frame[name] = values.astype(bool)
        elif kind in ("LONG", "INT", "SHORT", "BYTE"):
            numbers = pd.to_numeric(values)
            frame[name] = numbers.astype("int64") if numbers.notna().all() else numbers
    return frame
