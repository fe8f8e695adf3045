"""The time-series store: pick a backend from a URL (docs/STORE.md).

- ``duckdb:///runs/store.db`` -> DuckDB file ``runs/store.db`` (relative to the working dir);
  ``duckdb:////abs/store.db`` -> ``/abs/store.db`` (SQLAlchemy's three/four-slash rule);
  ``duckdb://:memory:`` -> in-memory.
- ``questdb://host:9000?pg_port=8812`` or ``http://host:9000`` -> QuestDB (ILP and ``/exec``
  over HTTP on port 9000); ``https://`` for TLS.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from app.errors import InputError
from app.store.base import KEYS, TABLES, TimeSeriesStore
from app.store.duckdb_store import DuckDBStore
from app.store.errors import StoreError, StoreUnavailable

__all__ = [
    "KEYS",
    "TABLES",
    "DuckDBStore",
    "StoreError",
    "StoreUnavailable",
    "TimeSeriesStore",
    "open_store",
]


def open_store(url: str) -> TimeSeriesStore:
    """Open the store named by ``url`` with its schema created; InputError for a bad URL."""
    if not isinstance(url, str) or "://" not in url:
        raise InputError(f"store url={url!r}: expected duckdb://... or questdb://host:9000")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "duckdb":
        return DuckDBStore(_duckdb_path(url), url=url)
    if scheme in ("questdb", "http", "https"):
        from app.store.questdb_store import QuestDBStore  # keeps the HTTP client off DuckDB paths

        return QuestDBStore.from_url(url)
    raise InputError(
        f"store url={url!r}: unknown scheme {scheme!r} (expected duckdb, questdb, http or https)"
    )


def _duckdb_path(url: str) -> str:
    rest = url.split("://", 1)[1]
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    parts = urlsplit(url)
    if parts.netloc or parts.query or not rest.startswith("/") or rest == "/":
        raise InputError(
            f"store url={url!r}: expected duckdb:///relative/file.db, duckdb:////abs/file.db "
            "or duckdb://:memory:"
        )
    return rest[1:]
