"""A real HTTP server on 127.0.0.1 (port 0) for the side-source tests.

Routes map a path (query ignored) to a list of canned answers: each request takes the next
answer, and the last one repeats, so "503, 503, 200" tests retries. Every request is recorded
with its path, query and headers, so tests can check what a client sent.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0


def json_answer(payload: Any, status: int = 200) -> Answer:
    return Answer(status, json.dumps(payload).encode(), "application/json")


def text_answer(text: str | bytes, content_type: str, status: int = 200) -> Answer:
    body = text.encode("utf-8") if isinstance(text, str) else text
    return Answer(status, body, content_type)


@dataclass(frozen=True)
class Recorded:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class LoopbackServer:
    routes: dict[str, list[Answer]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def route(self, path: str, *answers: Answer) -> None:
        self.routes[path] = list(answers)

    def hits(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> LoopbackServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                server.requests.append(
                    Recorded(parts.path, parse_qs(parts.query), dict(self.headers.items()))
                )
                answers = server.routes.get(parts.path)
                if not answers:
                    answer = Answer(404, b'{"error": "no route"}')
                else:
                    answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for key, value in answer.headers:
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"


def closed_port_url() -> str:
    """A loopback URL where nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
