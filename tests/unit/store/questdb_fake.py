"""A loopback HTTP server that speaks enough of QuestDB's HTTP API for the store's tests.

- ``POST /write``: ILP text lines (protocol 1), parsed and stored with QuestDB's
  ``DEDUP UPSERT KEYS`` semantics (a row with an existing key replaces it); each request
  is one committed WAL transaction. Raw bodies are kept in ``writes``.
- ``GET /exec?query=``: ``CREATE TABLE`` in QuestDB's dialect (checked strictly: designated
  timestamp, daily partitions, WAL, dedup keys) answers ``{"ddl": "OK"}``; ``wal_tables()``
  answers the sequencer/writer transaction numbers (``apply_lag_polls`` simulates a lagging
  apply job); other SELECTs run on an in-memory DuckDB and answer in QuestDB's JSON shape
  ``{"query", "columns": [{"name", "type"}], "timestamp", "dataset", "count"}``; bad SQL
  answers HTTP 400 ``{"query", "error", "position"}`` like QuestDB does.

SQL dialect caveat: the SELECTs run on DuckDB, so this checks the store's plumbing, typing and
semantics over real HTTP, not that QuestDB's parser accepts every statement; the unit tests
pin the exact statements and the contract suite runs against a real server via QUESTDB_URL.
"""

from __future__ import annotations

import json
import math
import re
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pandas as pd
import pyarrow as pa

_DDL = re.compile(
    r'CREATE TABLE IF NOT EXISTS "(?P<name>\w+)" \((?P<cols>[^)]*)\) '
    r'TIMESTAMP\("ts"\) PARTITION BY DAY WAL DEDUP UPSERT KEYS\((?P<keys>[^)]*)\)$'
)
_TYPES = {
    "SYMBOL": "VARCHAR",
    "VARCHAR": "VARCHAR",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DOUBLE": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class IlpError(ValueError):
    """A line the fake cannot parse (QuestDB answers such a request with HTTP 400)."""


def parse_ilp(body: str) -> list[tuple[str, dict[str, str], dict[str, Any], int | None]]:
    """ILP text -> [(table, tags, fields, timestamp_ns)]; handles escapes and quoted strings."""
    out = []
    i, n = 0, len(body)

    def until(stops: str) -> str:
        nonlocal i
        chars = []
        while i < n and body[i] not in stops:
            if body[i] == "\\" and i + 1 < n:
                chars.append(body[i + 1])
                i += 2
            else:
                chars.append(body[i])
                i += 1
        return "".join(chars)

    while i < n:
        if body[i] == "\n":
            i += 1
            continue
        table = until(", \n")
        tags: dict[str, str] = {}
        while i < n and body[i] == ",":
            i += 1
            key = until("=")
            i += 1
            tags[key] = until(", \n")
        if i >= n or body[i] != " ":
            raise IlpError(f"line for {table!r} has no fields")
        i += 1
        fields: dict[str, Any] = {}
        while True:
            key = until("=")
            i += 1
            if i < n and body[i] == '"':
                i += 1
                chars = []
                while i < n and body[i] != '"':
                    if body[i] == "\\" and i + 1 < n:
                        chars.append(body[i + 1])
                        i += 2
                    else:
                        chars.append(body[i])
                        i += 1
                i += 1
                fields[key] = "".join(chars)
            else:
                fields[key] = _scalar(until(", \n"))
            if i < n and body[i] == ",":
                i += 1
                continue
            break
        ts = None
        if i < n and body[i] == " ":
            i += 1
            raw = until("\n")
            ts = int(raw[:-1]) if raw.endswith("n") else int(raw)
        out.append((table, tags, fields, ts))
    return out


def _scalar(raw: str) -> Any:
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False
    if raw.endswith("i"):
        return int(raw[:-1])
    if raw.endswith("t") and raw[:-1].lstrip("-").isdigit():
        return _EPOCH + timedelta(microseconds=int(raw[:-1]))
    try:
        return float(raw)
    except ValueError:
        raise IlpError(f"cannot parse field value {raw!r}") from None


class FakeQuestDB:
    """Start with ``with FakeQuestDB() as q:``; ``q.url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.queries: list[str] = []
        self.paths: list[str] = []
        self.apply_lag_polls = 0  # wal_tables() reports "not yet applied" this many times
        self.suspended: set[str] = set()
        self.fail_writes = 0  # answer HTTP 500 to this many of the next /write requests ...
        self.accept_before_failing = 0  # ... after first accepting this many
        self._db = duckdb.connect()
        self._db.execute("SET TimeZone = 'UTC'").fetchall()
        self._lock = threading.Lock()
        self._keys: dict[str, list[str]] = {}
        self._columns: dict[str, list[str]] = {}
        self._types: dict[str, dict[str, str]] = {}
        self._txn: dict[str, int] = {}
        self._lag_left: dict[str, int] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeQuestDB:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._db.close()

    def rows(self, table: str) -> pd.DataFrame:
        """What the fake holds for a table, for assertions."""
        with self._lock:
            return self._db.sql(f"SELECT * FROM {table} ORDER BY ts").df()

    # ------------------------------------------------------------------ protocol

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as QuestDB and the ILP client expect

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                fake.paths.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if urlsplit(self.path).path not in ("/write", "/api/v2/write"):
                    return self._reply(404, {"error": "not found"})
                if fake.accept_before_failing > 0:
                    fake.accept_before_failing -= 1
                elif fake.fail_writes > 0:
                    fake.fail_writes -= 1
                    return self._reply(500, {"code": "internal error", "message": "disk full"})
                try:
                    fake._ingest(body.decode())
                except (IlpError, duckdb.Error) as exc:
                    return self._reply(400, {"code": "invalid", "message": str(exc)})
                fake.writes.append(body)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                fake.paths.append(self.path)
                parts = urlsplit(self.path)
                if parts.path != "/exec":
                    return self._reply(404, {"error": "not found"})
                query = parse_qs(parts.query).get("query", [""])[0]
                fake.queries.append(query)
                status, answer = fake._exec(query)
                self._reply(status, answer)

            def _reply(self, status: int, answer: dict[str, Any]) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _ingest(self, body: str) -> None:
        by_table: dict[str, list[dict[str, Any]]] = {}
        for table, tags, fields, ts in parse_ilp(body):
            if table not in self._columns:
                raise IlpError(f"table {table!r} does not exist (the store creates it first)")
            row = {**tags, **fields, "ts": _EPOCH + timedelta(microseconds=(ts or 0) // 1000)}
            by_table.setdefault(table, []).append(row)
        with self._lock:
            for table, rows in by_table.items():
                frame = pd.DataFrame(rows).reindex(columns=self._columns[table])
                keys = self._keys[table]
                frame = frame.drop_duplicates(subset=keys, keep="last")
                arrow = pa.Table.from_pandas(frame, preserve_index=False)
                self._db.register("incoming", arrow)
                on = " AND ".join(f"t.{k} = i.{k}" for k in keys)
                cols = ", ".join(self._columns[table])
                casts = ", ".join(
                    f"CAST(i.{c} AS {self._types[table][c]})" for c in self._columns[table]
                )
                self._db.execute(f"DELETE FROM {table} t USING incoming i WHERE {on}").fetchall()
                self._db.execute(
                    f"INSERT INTO {table} ({cols}) SELECT {casts} FROM incoming i"
                ).fetchall()
                self._db.unregister("incoming")
                self._txn[table] = self._txn.get(table, 0) + 1
                self._lag_left[table] = self.apply_lag_polls

    def _exec(self, query: str) -> tuple[int, dict[str, Any]]:
        if query.startswith("CREATE TABLE"):
            match = _DDL.match(query)
            if not match:
                return 400, {"query": query, "error": "unsupported DDL in fake", "position": 0}
            name = match["name"]
            cols = re.findall(r'"(\w+)" (\w+)', match["cols"])
            keys = re.findall(r'"(\w+)"', match["keys"])
            if len(cols) != match["cols"].count(",") + 1 or not keys:
                return 400, {"query": query, "error": "unquoted identifier in fake", "position": 0}
            with self._lock:
                ddl = ", ".join(f"{c} {_TYPES[t]}" for c, t in cols)
                self._db.execute(f"CREATE TABLE IF NOT EXISTS {name} ({ddl})").fetchall()
                self._columns[name] = [c for c, _ in cols]
                self._types[name] = {c: _TYPES[t] for c, t in cols}
                self._keys[name] = keys
            return 200, {"ddl": "OK"}
        if "wal_tables()" in query:
            return 200, self._wal_tables(query)
        try:
            with self._lock:
                arrow = self._db.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            return 400, {"query": query, "error": str(exc).splitlines()[0], "position": 0}
        columns = [{"name": f.name, "type": _qdb_type(f.type)} for f in arrow.schema]
        dataset = [[_json_value(v) for v in row.values()] for row in arrow.to_pylist()]
        return 200, {
            "query": query,
            "columns": columns,
            "timestamp": -1,
            "dataset": dataset,
            "count": len(dataset),
        }

    def _wal_tables(self, query: str) -> dict[str, Any]:
        name = re.search(r"name = '(\w+)'", query)
        table = name[1] if name else ""
        columns = [
            {"name": "name", "type": "VARCHAR"},
            {"name": "suspended", "type": "BOOLEAN"},
            {"name": "writerTxn", "type": "LONG"},
            {"name": "sequencerTxn", "type": "LONG"},
        ]
        dataset = []
        if table in self._columns:
            seq = self._txn.get(table, 0)
            writer = seq
            if self._lag_left.get(table, 0) > 0:
                self._lag_left[table] -= 1
                writer = seq - 1
            dataset.append([table, table in self.suspended, writer, seq])
        return {
            "query": query,
            "columns": columns,
            "timestamp": -1,
            "dataset": dataset,
            "count": len(dataset),
        }


def _qdb_type(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP"
    if pa.types.is_floating(kind):
        return "DOUBLE"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_integer(kind):
        return "LONG"
    return "VARCHAR"


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, float) and math.isnan(value):
        return None  # QuestDB answers null for NaN/NULL doubles
    return value
