"""CcxtSource against a loopback HTTP server that speaks Binance's public REST API.

The server answers ``/api/v3/exchangeInfo`` (a minimal, hand-written spot listing) and
``/api/v3/klines`` (rows in Binance's wire format: open time ms, prices as strings, ...),
including the still-forming bar, as the real API does. ccxt's own binance class talks to it
with ``urls['api']['public']`` pointed at the loopback address.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from app.broker.ccxt_broker import CcxtBroker
from app.cli.main import main
from app.config import CcxtSettings
from app.errors import InputError
from app.sources import SourceUnavailable
from app.sources.ccxt_source import BAR_MS, CcxtSource
from tests.support.binance_loopback import symbol_info

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": T0_MS,
    "rateLimits": [],
    "symbols": [
        symbol_info("BTCUSDT", "BTC", "USDT"),
        symbol_info("LUNAUSDT", "LUNA", "USDT"),  # listed, but klines say "Invalid symbol"
    ],
}


class FakeBinance:
    """State of the loopback venue: bars up to ``now`` (the last one still forming)."""

    def __init__(self, n_bars: int) -> None:
        self.n_bars = n_bars  # bar i opens at T0 + 5i min; bar n_bars-1 is the forming one
        self.klines_requests: list[dict[str, str]] = []
        self.fail_next: list[str] = []  # "503" or "slow" per upcoming klines request
        self.lock = threading.Lock()

    @property
    def now(self) -> datetime:
        """Two minutes into the last (forming) bar."""
        return T0 + timedelta(minutes=5 * (self.n_bars - 1) + 2)

    def kline(self, i: int) -> list:
        open_ms = T0_MS + i * BAR_MS
        price = 100.0 + i
        return [
            open_ms,
            f"{price:.2f}",
            f"{price + 2:.2f}",
            f"{price - 1:.2f}",
            f"{price + 1:.2f}",
            f"{10 + i % 7:.5f}",
            open_ms + BAR_MS - 1,
            "1000.0",
            12,
            "5.0",
            "500.0",
            "0",
        ]

    def klines(self, query: dict[str, str]) -> list[list]:
        limit = int(query.get("limit", 500))
        if "startTime" not in query:  # Binance then answers the most recent `limit` bars
            first = max(0, self.n_bars - limit)
        else:
            first = max(0, -(-(int(query["startTime"]) - T0_MS) // BAR_MS))
        return [self.kline(i) for i in range(first, min(self.n_bars, first + limit))]


@pytest.fixture()
def venue() -> Iterator[tuple[FakeBinance, str]]:
    state = FakeBinance(n_bars=350)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                pass

        def _send_text(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/api/v3/exchangeInfo":
                return self._send(200, EXCHANGE_INFO)
            if url.path == "/api/v3/klines":
                with state.lock:
                    state.klines_requests.append(query)
                    failure = state.fail_next.pop(0) if state.fail_next else None
                if failure == "503":  # what a load balancer in front of the API answers
                    return self._send_text(503, "<html><body>503 Service Unavailable</body></html>")
                if failure == "-1001":  # Binance's own "internal error, try again"
                    return self._send(503, {"code": -1001, "msg": "Internal error; try again."})
                if failure == "slow":
                    time.sleep(1.5)
                if query.get("symbol") != "BTCUSDT":
                    return self._send(400, {"code": -1121, "msg": "Invalid symbol."})
                return self._send(200, state.klines(query))
            return self._send(404, {"code": -1, "msg": f"no route {url.path}"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/api/v3"
    finally:
        server.shutdown()
        server.server_close()


def _source(venue: tuple[FakeBinance, str], **kwargs: object) -> CcxtSource:
    state, base = venue
    sleeps: list[float] = []
    source = CcxtSource.from_settings(
        CcxtSettings(timeout_ms=kwargs.pop("timeout_ms", 5_000), max_retries=3),
        api_urls={"public": base},
        clock=lambda: state.now,
        sleep=sleeps.append,
        page_limit=kwargs.pop("page_limit", 100),
        **kwargs,
    )
    source.sleeps = sleeps  # type: ignore[attr-defined]
    return source


def test_backfill_pages_forward_and_never_returns_the_forming_bar(venue) -> None:
    state, _ = venue
    source = _source(venue)
    bars = source.backfill("BTC/USDT", since=T0)
    # 350 bars exist; the last is still forming at state.now -> 349 closed bars.
    assert len(bars) == 349
    assert bars["ts"].iloc[0] == T0 and bars["ts"].iloc[-1] == T0 + timedelta(minutes=5 * 348)
    assert bars["ts"].is_monotonic_increasing and not bars["ts"].duplicated().any()
    assert str(bars["ts"].dtype) == "datetime64[ns, UTC]"
    assert (bars["symbol"] == "BTCUSDT").all()
    assert bars.iloc[3][["open", "high", "low", "close", "volume"]].tolist() == [
        103.0,
        105.0,
        102.0,
        104.0,
        13.0,
    ]
    # pages of 100 from T0, each starting right after the previous page's last bar
    starts = [int(q["startTime"]) for q in state.klines_requests]
    assert starts == [T0_MS + k * 100 * BAR_MS for k in range(4)]
    assert {q["limit"] for q in state.klines_requests} == {"100"}
    assert all(q["interval"] == "5m" for q in state.klines_requests)


def test_backfill_until_is_exclusive_and_since_snaps_to_the_grid(venue) -> None:
    source = _source(venue)
    bars = source.backfill(
        "BTC/USDT", since=T0 + timedelta(minutes=7), until=T0 + timedelta(minutes=30)
    )
    assert bars["ts"].dt.minute.tolist() == [10, 15, 20, 25]


def test_poll_closed_resumes_after_the_stored_bar(venue) -> None:
    state, _ = venue
    source = _source(venue)
    last = T0 + timedelta(minutes=5 * 340)
    bars = source.poll_closed("BTC/USDT", last)
    assert bars["ts"].tolist() == [last + timedelta(minutes=5 * k) for k in range(1, 9)]
    state.n_bars += 1  # the forming bar closes, a new one starts
    more = source.poll_closed("BTC/USDT", bars["ts"].iloc[-1].to_pydatetime())
    assert more["ts"].tolist() == [last + timedelta(minutes=45)]
    latest = source.poll_closed("BTC/USDT", None)
    assert len(latest) == 99 and latest["ts"].iloc[-1] == more["ts"].iloc[-1]


def test_5xx_and_timeouts_are_retried_with_backoff_then_succeed(venue) -> None:
    state, _ = venue
    source = _source(venue, timeout_ms=500, backoff_s=0.5)
    state.fail_next = ["503", "-1001", "slow"]
    bars = source.backfill("BTC/USDT", since=T0, until=T0 + timedelta(minutes=50))
    assert len(bars) == 10
    assert source.sleeps == [0.5, 1.0, 2.0]  # exponential backoff between the four attempts
    assert len(state.klines_requests) == 4


def test_persistent_failure_gives_up_after_the_retry_budget(venue) -> None:
    state, _ = venue
    source = _source(venue, backoff_s=0.1)
    state.fail_next = ["503"] * 10
    with pytest.raises(SourceUnavailable, match=r"binance fetch_ohlcv BTC/USDT failed after 4"):
        source.backfill("BTC/USDT", since=T0)
    assert source.sleeps == [0.1, 0.2, 0.4]


def test_unknown_symbol_is_a_clear_input_error(venue) -> None:
    source = _source(venue)
    with pytest.raises(InputError, match=r"symbol='DOGE/USDT' is not listed on binance"):
        source.backfill("DOGE/USDT", since=T0)
    with pytest.raises(InputError, match=r"did you mean \['BTC/USDT'\]"):
        source.backfill("BTC/USDT:USDT", since=T0)
    with pytest.raises(InputError, match="unknown symbol"):  # listed, but the venue refuses it
        source.backfill("LUNA/USDT", since=T0)


def test_unknown_exchange_id_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not a ccxt exchange id"):
        CcxtSource.from_settings(CcxtSettings(exchange="nasdaq_darkpool"))


def test_request_pacing_is_the_venue_default_unless_configured() -> None:
    default = CcxtSource.from_settings(CcxtSettings()).exchange
    assert default.enableRateLimit and default.rateLimit == 50  # Binance's published pacing
    assert CcxtSource.from_settings(CcxtSettings(rate_limit_ms=5)).exchange.rateLimit == 5
    broker = CcxtBroker(CcxtSettings(rate_limit_ms=5), ["BTCUSDT"], api_key="k", secret="s")
    assert broker.exchange.enableRateLimit and broker.exchange.rateLimit == 5
    with pytest.raises(ValueError, match="rate_limit_ms"):
        CcxtSettings(rate_limit_ms=0)


def _ingest(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["ingest", "--source", "ccxt", *argv])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_backfills_then_resumes_from_the_store(venue, tmp_path, capsys, monkeypatch) -> None:
    state, base = venue
    monkeypatch.setenv("APP_CCXT__MAX_RETRIES", "0")
    url = f"duckdb:///{tmp_path / 'store.db'}"
    common = ("--symbol", "BTC/USDT", "--api-url", f"public={base}", "--store", url)
    code, first = _ingest(
        capsys, *common, "--since", "2025-01-01T00:00:00Z", "--until", "2025-01-01T10:00:00Z"
    )
    assert code == 0
    assert first["symbols"] == ["BTCUSDT"] and first["rows_written"] == 120
    # no --since: resume after the stored 09:55 bar; all 350 venue bars are closed by now
    state.klines_requests.clear()
    code, second = _ingest(capsys, *common)
    assert code == 0 and second["rows_written"] == 350 - 120 and second["duplicates_skipped"] == 0
    assert int(state.klines_requests[0]["startTime"]) == T0_MS + 120 * BAR_MS


def test_cli_exits_1_when_the_venue_stays_down(venue, tmp_path, capsys, monkeypatch) -> None:
    state, base = venue
    monkeypatch.setenv("APP_CCXT__MAX_RETRIES", "0")
    state.fail_next = ["503"]
    code = main(
        [
            "ingest",
            "--source",
            "ccxt",
            "--symbol",
            "BTC/USDT",
            "--api-url",
            f"public={base}",
            "--since",
            "2025-01-01T00:00:00Z",
            "--store",
            f"duckdb:///{tmp_path / 's.db'}",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "fetch_ohlcv BTC/USDT failed after 1 attempts" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["exit_code"] == 1


def test_venue_bars_warm_up_then_poll_each_closed_bar_once(venue) -> None:
    """The live feed's poller over ccxt's real binance class: the warm-up ends at the last
    closed bar, each poll returns the bars closed since, none twice, never the forming one."""
    from app.live.venue_bars import VenueBars

    state, _ = venue
    n = state.n_bars  # bars 0..n-2 closed, n-1 forming
    bars = VenueBars(_source(venue), {"BTCUSDT": "BTC/USDT"}, lambda: state.now)
    warm = bars.warmup(20)
    assert [b.ts for b in warm] == [T0 + timedelta(minutes=5 * i) for i in range(n - 21, n - 1)]
    assert bars.poll() == []
    state.n_bars += 3  # three more bars close
    polled = bars.poll()
    assert [b.ts for b in polled] == [T0 + timedelta(minutes=5 * i) for i in range(n - 1, n + 2)]
    assert polled[0].close == 100.0 + n and bars.poll() == []
    assert bars.due() == T0 + timedelta(
        minutes=5 * (n + 3), seconds=2
    )  # the forming bar closes, + grace
