"""/v1/bars, /v1/headlines and /v1/run beside the v1 API: same keys, clear errors, order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.clock import ReplayClock
from app.serve.api import build_api
from app.serve.market import MarketTape, ScoredHeadline, market_router
from app.serve.run_info import RunInfo, run_router
from app.types import NewsItem
from tests.builders import T0, bar
from tests.unit.serve.serve_builders import Keys, api_settings, fresh_keys, live_view


@pytest.fixture
def served(tmp_path: Path) -> tuple[TestClient, MarketTape, Keys]:
    keys = fresh_keys()
    settings = api_settings(tmp_path, keys)
    view = live_view(settings, ReplayClock(T0))
    tape = MarketTape(max_bars=3, max_headlines=2)
    app = build_api(view, settings)
    app.include_router(market_router(tape, view.tickers()))
    app.include_router(run_router(RunInfo("paper", "paper", T0)))
    return TestClient(app), tape, keys


def news(i: int, symbols: tuple[str, ...] = ("BTCUSDT",)) -> ScoredHeadline:
    item = NewsItem(
        f"n{i}", T0 + timedelta(minutes=i), "wire", f"title {i}", symbols=symbols, topic="earnings"
    )
    return ScoredHeadline(item, 0.1 * i)


def test_bars_oldest_first_bounded_and_replaced(served) -> None:
    client, tape, keys = served
    for i in range(5):
        tape.record_bar(bar(i=i, price=100.0 + i))
    tape.record_bar(bar(i=4, price=200.0))  # same ts: replaces
    tape.record_bar(bar(i=1))  # older than the last: ignored
    r = client.get("/v1/bars/BTCUSDT", headers=keys.ro())
    assert r.status_code == 200
    got = r.json()["bars"]
    assert [b["close"] for b in got] == [102.0, 103.0, 200.0]
    assert got[0]["ts"] == "2025-01-01T00:10:00Z"
    assert (
        client.get("/v1/bars/BTCUSDT?limit=1", headers=keys.ro()).json()["bars"][0]["close"]
        == 200.0
    )
    assert client.get("/v1/bars/ETHUSDT", headers=keys.ro()).json()["bars"] == []


def test_headlines_newest_first_per_symbol(served) -> None:
    client, tape, keys = served
    for i in (1, 3, 2):
        tape.record_headline(news(i, ("BTCUSDT", "ETHUSDT")))
    got = client.get("/v1/headlines/BTCUSDT", headers=keys.ro()).json()["headlines"]
    assert [h["id"] for h in got] == ["n3", "n2"]  # newest first; bounded to 2 (n1 dropped)
    assert got[0]["sentiment"] == pytest.approx(0.3) and got[0]["topics"] == ["earnings"]


def test_keys_and_errors(served) -> None:
    client, _, keys = served
    for path in ("/v1/bars/BTCUSDT", "/v1/headlines/BTCUSDT", "/v1/run"):
        assert client.get(path).status_code == 401
    assert client.get("/v1/bars/XRPUSDT", headers=keys.ro()).status_code == 404
    assert client.get("/v1/bars/BTCUSDT?limit=4", headers=keys.ro()).status_code == 422
    assert client.get("/v1/headlines/bad$ticker", headers=keys.ro()).status_code in (404, 422)


def test_run_info(served) -> None:
    client, _, keys = served
    assert client.get("/v1/run", headers=keys.ro()).json() == {
        "mode": "paper",
        "venue": "paper",
        "started_at": "2025-01-01T00:00:00Z",
    }
    with pytest.raises(ValueError, match="RunInfo.mode='demo'"):
        RunInfo("demo", "x", T0)  # type: ignore[arg-type]
