"""Crypto trade prints end to end: ccxt's real Binance class polls a loopback server speaking
``/api/v3/aggTrades`` -> ``ingest-side --source ccxt_trades`` (two runs: the second resumes)
-> DuckDB -> ``build_features`` and the incremental engine on the stored prints."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from app.features.batch import build_features
from app.features.spec import default_spec
from app.store import open_store
from app.types import AssetClass
from tests.builders import bars_frame
from tests.integration.test_ccxt_loopback import EXCHANGE_INFO
from tests.unit.features.feat_builders import assert_frames_close, replay, run_incremental

T0 = datetime(2025, 1, 1, tzinfo=UTC)
FIRST_MS = int((T0 + timedelta(minutes=40)).timestamp() * 1000)


def _agg_trades(n: int, seed: int = 4) -> list[dict]:
    """Binance aggTrade rows: ~7 s apart, every 97th in the same ms as the one before, sizes
    log-normal with a few very large prints."""
    rng = np.random.default_rng(seed)
    size = rng.lognormal(-3.0, 0.6, n)
    size[rng.choice(np.arange(100, n), 12, replace=False)] *= 40.0
    rows, ms = [], FIRST_MS
    for i in range(n):
        ms += 0 if i % 97 == 1 else int(rng.integers(3_000, 11_000))
        rows.append({"a": i, "p": f"{60_000 + i * 0.5:.2f}", "q": f"{size[i]:.5f}",
                     "f": 3 * i, "l": 3 * i + 2, "T": ms, "m": bool(i % 2), "M": True})  # fmt: skip
    return rows


class Venue:
    def __init__(self, trades: list[dict]) -> None:
        self.trades = trades
        self.requests: list[dict[str, str]] = []

    def agg_trades(self, q: dict[str, str]) -> list[dict]:
        self.requests.append(q)
        limit = int(q.get("limit", 500))
        if "fromId" in q:
            if "startTime" in q:  # Binance refuses both together; so do we
                raise AssertionError("fromId with startTime")
            start = int(q["fromId"])
            return self.trades[start : start + limit]
        lo, hi = int(q["startTime"]), int(q["endTime"])
        assert hi - lo <= 3_600_000, "Binance allows at most one hour per window"
        return [t for t in self.trades if lo <= t["T"] <= hi][:limit]


@pytest.fixture
def venue() -> Iterator[tuple[Venue, str]]:
    state = Venue(_agg_trades(2600))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/api/v3/exchangeInfo":
                body, status = EXCHANGE_INFO, 200
            elif url.path == "/api/v3/aggTrades" and query.get("symbol") == "BTCUSDT":
                body, status = state.agg_trades(query), 200
            else:
                body, status = {"code": -1, "msg": f"no route {url.path}"}, 404
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/api/v3"
    finally:
        server.shutdown()
        server.server_close()


def _run(capsys, *argv: str) -> dict:  # type: ignore[no-untyped-def]
    code = main(list(argv))
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, summary
    return summary


def _independent_blocks(trades: list[dict]) -> tuple[pd.Series, set[pd.Timestamp]]:
    """Size per millisecond, and the ms whose size tops the 99th percentile of <=1000 before."""
    sizes = pd.Series([float(t["q"]) for t in trades], index=[t["T"] for t in trades])
    per_ms = sizes.groupby(level=0).sum()
    values = per_ms.to_numpy()
    blocks = {
        pd.Timestamp(int(ms), unit="ms", tz="UTC")
        for i, ms in enumerate(per_ms.index)
        if i >= 50 and values[i] > np.percentile(values[max(0, i - 1000) : i], 99.0)
    }
    return per_ms, blocks


def test_ccxt_prints_resume_and_feed_crypto_features(venue, tmp_path, capsys) -> None:
    state, base = venue
    url = f"duckdb:///{tmp_path}/prints.db"
    argv = ["ingest-side", "--kind", "flow", "--source", "ccxt_trades", "--symbol", "BTC/USDT",
            "--since", "2025-01-01", "--base-url", base, "--store", url]  # fmt: skip
    first = _run(capsys, *argv, "--pages", "2")  # stops with a full page: resumable
    assert any("fromId" in q for q in state.requests)
    second = _run(capsys, *argv, "--pages", "10")
    assert second["tables"]["flow"]["written"] > 0
    assert _run(capsys, *argv)["rows_written"] == 0  # caught up: nothing new, nothing twice
    assert first["tables"]["flow"]["written"] > 0

    store = open_store(url)
    try:
        bars = bars_frame(n=12 * 8, symbol="BTCUSDT", start=T0)
        store.write_bars(bars)
        flow = store.read("flow", "BTCUSDT")
        bars = store.read_bars("BTCUSDT")
    finally:
        store.close()
    per_ms, blocks = _independent_blocks(state.trades)
    prints = flow[flow["kind"] == "trade_print"].sort_values("ts")
    assert len(prints) == len(per_ms)  # every print once, the held-back ms read whole
    np.testing.assert_allclose(prints["value"].to_numpy(), per_ms.to_numpy(), rtol=1e-12)
    stored_blocks = flow[flow["kind"] == "block_trade"]
    assert set(stored_blocks["ts"]) == blocks and len(blocks) >= 5
    assert (flow["published_at"] == flow["ts"]).all()

    spec = default_spec(AssetClass.CRYPTO)
    assert {"trade_size_dev", "block_trade_flag"} <= set(spec.flow_features)
    batch = build_features(bars, asset_class=AssetClass.CRYPTO, flow=flow, spec=spec)
    assert batch["trade_size_dev"].nunique() > 10
    closes = bars["ts"] + pd.Timedelta(minutes=5)
    # look-ahead: flagged exactly on bars whose (close - 5 min, close] holds a block's print
    pubs = np.sort(stored_blocks["published_at"].astype("int64").to_numpy())
    c = closes.astype("int64").to_numpy()
    want = np.array([((pubs <= x) & (pubs > x - 300_000_000_000)).any() for x in c], float)
    np.testing.assert_array_equal(batch["block_trade_flag"].to_numpy(), want)
    assert want.sum() >= 3
    before = (closes < prints["published_at"].iloc[0]).to_numpy()
    assert before.any() and (batch["trade_size_dev"].to_numpy()[before] == 0.0).all()

    per_bar = replay(bars["ts"], None, None, flow)
    assert_frames_close(run_incremental(spec, bars, per_bar), batch, rtol=1e-9)


def test_prints_csv_blocks_use_past_prints_only(tmp_path, capsys) -> None:
    rows = ["ts,symbol,price,size,side"]
    rows += [f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z,aapl,200,{100 + i % 7},buy"
             for i in range(60)]  # fmt: skip
    rows += ["2025-01-01T00:01:00Z,AAPL,200,50000,sell",  # the block
             "2025-01-01T00:01:01Z,AAPL,200,106,x",  # bad side
             "2025-01-01T00:01:02Z,AAPL,200,105,"]  # fmt: skip
    path = tmp_path / "prints.csv"
    path.write_text("\n".join(rows) + "\n")
    url = f"duckdb:///{tmp_path}/p.db"
    summary = _run(capsys, "ingest-side", "--kind", "flow", "--source", "prints_csv",
                   "--path", str(path), "--block-floor", "1000", "--store", url)  # fmt: skip
    assert summary["rows_read"] == 63 and summary["rejected_by_reason"] == {"flow.bad_side": 1}
    store = open_store(url)
    try:
        flow = store.read("flow")
    finally:
        store.close()
    blocks = flow[flow["kind"] == "block_trade"]
    assert blocks["ts"].tolist() == [pd.Timestamp("2025-01-01T00:01:00Z")]
    assert blocks["value"].tolist() == [50000.0] and set(flow["symbol"]) == {"AAPL"}
    assert (flow["kind"] == "trade_print").sum() == 62
