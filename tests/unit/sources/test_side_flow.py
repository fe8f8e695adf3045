"""Flow sources: FINRA short volume (file + CDN over loopback), options-flow CSV, Coin Metrics
(shared CSV export + community API over loopback), and the store-shaped flow CSV."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest

from app.errors import InputError
from app.sources.flow_sources import (
    fetch_coinmetrics,
    fetch_finra_days,
    finra_published_at,
    parse_finra_short_volume,
    read_coinmetrics_csv,
    read_finra_files,
    read_flow_csv,
    read_options_flow_csv,
)
from app.sources.http import HttpClient, HttpPolicy
from tests.unit.sources.side_loopback import Answer, LoopbackServer, json_answer, text_answer

FINRA_HEADER = "Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market"
FINRA_FILE = "\n".join(
    [
        FINRA_HEADER,
        "20250602|AAPL|4021334|12044|9120551|B,Q,N",
        "20250602|MSFT|1500000|0|3000000|B,Q,N",
        "20250602|ZZZZ|0|0|0|Q",  # no volume: no ratio
        "20250602|BAD|abc|0|100|Q",
        "20250602|OVER|200|0|100|Q",  # short > total
        "2025-06-02|AAPL|1|0|2|Q",
        "20250602|AAPL|1|0",
        "",
    ]
)


@pytest.fixture
def http():
    with HttpClient(HttpPolicy(timeout_s=2, retries=1, backoff_s=0)) as client:
        yield client


def test_finra_file_is_published_at_18_new_york():
    assert finra_published_at(date(2025, 6, 2)) == datetime(2025, 6, 2, 22, tzinfo=UTC)  # EDT
    assert finra_published_at(date(2025, 12, 1)) == datetime(2025, 12, 1, 23, tzinfo=UTC)  # EST


def test_finra_rows_map_to_short_volume_kinds():
    batch = parse_finra_short_volume(FINRA_FILE, where="mem://finra")
    assert batch.rows_read == 7
    assert dict(batch.rejected) == {"bad_value": 1, "bad_volume": 1, "bad_date": 1,
                                    "bad_field_count": 1}  # fmt: skip
    by = {(p.symbol, p.kind): p for p in batch.items}
    ratio = by[("AAPL", "short_volume_ratio")]
    assert ratio.value == pytest.approx(4021334 / 9120551)
    assert ratio.ts == datetime(2025, 6, 2, tzinfo=UTC)
    assert ratio.published_at == datetime(2025, 6, 2, 22, tzinfo=UTC)
    assert by[("AAPL", "offexchange_volume")].value == 9120551
    assert by[("MSFT", "short_volume")].value == 1500000
    assert ("ZZZZ", "short_volume_ratio") not in by and ("ZZZZ", "short_volume") in by


def test_finra_symbol_filter_and_header_check(tmp_path):
    batch = parse_finra_short_volume(FINRA_FILE, where="mem://finra", symbols=["MSFT"])
    assert {p.symbol for p in batch.items} == {"MSFT"}
    with pytest.raises(InputError, match="mem://x: header 'Date,Symbol'"):
        parse_finra_short_volume("Date,Symbol\n", where="mem://x")
    folder = tmp_path / "finra"
    folder.mkdir()
    (folder / "CNMSshvol20250602.txt").write_text(FINRA_FILE)
    (folder / "CNMSshvol20250603.txt").write_text(FINRA_FILE.replace("20250602", "20250603"))
    both = read_finra_files(folder, symbols=["AAPL"])
    assert sorted({p.ts.day for p in both.items}) == [2, 3]
    assert both.rows_read == 14


def test_finra_cdn_days_skip_weekends_and_list_holidays(http):
    with LoopbackServer() as server:
        path = "/equity/regsho/daily/CNMSshvol{}.txt"
        server.route(path.format("20250606"), Answer(503), text_answer(FINRA_FILE, "text/plain"))
        server.route(path.format("20250609"), Answer(403, b"<Error>AccessDenied</Error>"))
        server.route(path.format("20250610"), text_answer(FINRA_FILE, "text/plain"))
        batch = fetch_finra_days(
            http, date(2025, 6, 6), date(2025, 6, 10), base_url=server.url, symbols=["AAPL"]
        )
        asked = [r.path for r in server.requests]
    assert asked == [
        path.format("20250606"),
        path.format("20250606"),  # the 503 retried
        path.format("20250609"),  # Saturday and Sunday never asked
        path.format("20250610"),
    ]
    assert batch.missing == [f"{server.url}{path.format('20250609')}"]
    assert {p.symbol for p in batch.items} == {"AAPL"}


def test_options_flow_csv_with_vendor_column_names(tmp_path):
    path = tmp_path / "uoa.csv"
    path.write_text(
        "Time,Ticker,Type,Strike,Expiry,Premium,Alert_Time\n"
        '2025-06-02T14:31:07Z,aapl,CALL,200,2025-06-20,"$1,250,000",2025-06-02T14:31:09Z\n'
        "2025-06-02T14:35:00+00:00,MSFT,P,400,2025-06-20,310000,\n"
        "2025-06-02T14:36:00,MSFT,P,400,2025-06-20,310000,\n"
        "2025-06-02T14:37:00Z,MSFT,straddle,400,2025-06-20,310000,\n"
        "2025-06-02T14:38:00Z,MSFT,C,400,2025-06-20,-5,\n"
        "2025-06-02T14:39:00Z,MSFT,C,400,2025-06-20,5,2025-06-02T14:00:00Z\n"
        "2025-06-02T14:40:00Z,,C,400,2025-06-20,5,\n"
    )
    batch = read_options_flow_csv(path)
    assert dict(batch.rejected) == {"naive_ts": 1, "bad_put_call": 1, "bad_premium": 1,
                                    "published_before_ts": 1, "missing_symbol": 1}  # fmt: skip
    call, put = batch.items
    assert (call.symbol, call.kind, call.value) == ("AAPL", "uoa_call_premium", 1_250_000.0)
    assert call.published_at == datetime(2025, 6, 2, 14, 31, 9, tzinfo=UTC)
    assert (put.kind, put.value) == ("uoa_put_premium", 310_000.0)
    assert put.published_at == put.ts  # public when printed
    assert len(read_options_flow_csv(path, assume_utc=True).items) == 3


def test_options_flow_csv_without_a_premium_column(tmp_path):
    path = tmp_path / "uoa.csv"
    path.write_text("ts,symbol,put_call,size\n")
    with pytest.raises(InputError, match=r"lacks column\(s\) \['premium'\]"):
        read_options_flow_csv(path)


def test_coinmetrics_export_of_shared_data(shared_data):
    path = shared_data / "onchain_coinmetrics_btc" / "btc_daily.csv"
    batch = read_coinmetrics_csv(path, symbol="BTCUSDT")
    assert batch.rows_read == 3368 and batch.rows_rejected == 0
    assert len(batch.items) == 4 * 3368
    first_day = [p for p in batch.items if p.ts == datetime(2017, 1, 1, tzinfo=UTC)]
    by = {p.kind: p for p in first_day}
    assert by["active_addresses"].value == 466889.0
    assert by["exchange_inflow"].value == pytest.approx(9747.90395094)
    assert by["exchange_net_flow"].value == pytest.approx(9747.90395094 - 9371.23369493)
    assert all(p.published_at == datetime(2017, 1, 2, tzinfo=UTC) for p in first_day)
    assert {p.symbol for p in batch.items} == {"BTCUSDT"}


def test_coinmetrics_api_pages_string_values_and_the_open_day(http):
    now = datetime(2025, 6, 3, 9, tzinfo=UTC)
    page1 = {
        "data": [
            {"asset": "btc", "time": "2025-06-01T00:00:00.000000000Z", "AdrActCnt": "812345",
             "FlowInExNtv": "25000.5", "FlowOutExNtv": "26000.25"},
        ],
        "next_page_token": "0.MjAyNS0wNi0wMg",
        "next_page_url": "https://community-api.coinmetrics.io/v4/...&next_page_token=0.Mj",
    }  # fmt: skip
    page2 = {
        "data": [
            {"asset": "btc", "time": "2025-06-02T00:00:00.000000000Z", "AdrActCnt": "800000",
             "FlowInExNtv": None, "FlowOutExNtv": "1"},
            {"asset": "btc", "time": "2025-06-03T00:00:00.000000000Z", "AdrActCnt": "1"},
            {"asset": "btc", "time": "June 4th"},
        ]
    }  # fmt: skip
    with LoopbackServer() as server:
        server.route("/v4/timeseries/asset-metrics", json_answer(page1), json_answer(page2))
        batch = fetch_coinmetrics(
            http, asset="BTC", symbol="BTCUSDT", start=date(2025, 6, 1), base_url=server.url,
            now=now,
        )  # fmt: skip
        first, second = server.hits("/v4/timeseries/asset-metrics")
    assert first.query["assets"] == ["btc"] and first.query["frequency"] == ["1d"]
    assert first.query["metrics"] == ["AdrActCnt,FlowInExNtv,FlowOutExNtv"]
    assert first.query["start_time"] == ["2025-06-01"] and "next_page_token" not in first.query
    assert second.query["next_page_token"] == ["0.MjAyNS0wNi0wMg"]
    assert dict(batch.rejected) == {"missing_exchange_inflow": 1, "not_final": 1, "bad_ts": 1}
    by = {(p.ts.day, p.kind): p for p in batch.items}
    assert by[(1, "exchange_net_flow")].value == pytest.approx(-999.75)
    assert by[(1, "exchange_net_flow")].published_at == datetime(2025, 6, 2, tzinfo=UTC)
    assert by[(2, "active_addresses")].value == 800000
    assert (2, "exchange_net_flow") not in by and (2, "exchange_outflow") in by


def test_store_shaped_flow_csv(tmp_path):
    path = tmp_path / "flow.csv"
    path.write_text(
        "symbol,kind,ts,published_at,value\n"
        "BTCUSDT,whale_transfers,2025-01-06T00:00:00Z,2025-01-06T01:00:00Z,4\n"
        "BTCUSDT,,2025-01-06T00:00:00Z,2025-01-06T01:00:00Z,4\n"
        "BTCUSDT,whale_transfers,2025-01-06T01:00:00Z,2025-01-06T02:00:00Z,inf\n"
    )
    batch = read_flow_csv(path)
    assert dict(batch.rejected) == {"bad_kind": 1, "bad_value": 1}
    [point] = batch.items
    assert point.published_at - point.ts == timedelta(hours=1) and not math.isnan(point.value)
