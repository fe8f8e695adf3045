"""QuestDB store: exact wire formats, and failure handling over real loopback HTTP."""

from __future__ import annotations

import socket
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from app.errors import InputError
from app.store import StoreError, StoreUnavailable, open_store
from app.store.questdb_http import frame_from_exec
from app.store.questdb_sql import (
    create_table_sql,
    existing_keys_sql,
    ilp_buffer,
    last_ts_sql,
    latest_bars_sql,
    quote,
    select_sql,
    series_sql,
    wal_status_sql,
)
from app.store.questdb_store import QuestDBStore
from app.store.schema import prepare_batch
from tests.builders import T0, bars_frame
from tests.unit.store.questdb_fake import FakeQuestDB, parse_ilp

# ----------------------------------------------------------------------------- ILP bytes


def _bars(n: int) -> pd.DataFrame:
    ts = pd.date_range(T0, periods=n, freq="5min", tz="UTC").astype("datetime64[ns, UTC]")
    return pd.DataFrame(
        {
            "symbol": "BTC USDT",
            "ts": ts,
            "open": 100.0,
            "high": 101.5,
            "low": 99.25,
            "close": [100.5 + i for i in range(n)],
            "volume": 12.0,
        }
    )


def test_ilp_bytes_for_a_bar_batch():
    buffer = ilp_buffer("bars", _bars(2))
    assert bytes(buffer).decode() == (
        "bars,symbol=BTC\\ USDT open=100.0,high=101.5,low=99.25,close=100.5,volume=12.0 "
        "1735689600000000000\n"
        "bars,symbol=BTC\\ USDT open=100.0,high=101.5,low=99.25,close=101.5,volume=12.0 "
        "1735689900000000000\n"
    )


def test_ilp_bytes_for_orders_with_symbols_text_bool_and_missing_values():
    orders = pd.DataFrame(
        {
            "symbol": ["AAPL"],
            "ts": pd.Series([T0]).astype("datetime64[ns, UTC]"),
            "client_order_id": ['o-1 "x"'],
            "side": ["BUY"],
            "qty": [3.0],
            "type": ["MARKET"],
            "limit_price": [np.nan],
            "stop_price": [np.nan],
            "stop_loss": [95.0],
            "take_profit": [110.0],
            "reduce_only": [False],
            "status": ["FILLED"],
            "filled_qty": [3.0],
            "avg_fill_price": [100.5],
            "venue_order_id": ["42"],
            "role": ["entry"],
            "parent": [""],
            "attempts": [1.0],
            "message": [""],
            "external": [False],
        }
    )
    batch = prepare_batch("orders", orders, keep="first").frame
    assert bytes(ilp_buffer("orders", batch)).decode() == (
        "orders,symbol=AAPL,side=BUY,type=MARKET,status=FILLED,role=entry "
        'client_order_id="o-1 \\"x\\"",qty=3.0,limit_price=NaN,stop_price=NaN,'
        "stop_loss=95.0,take_profit=110.0,reduce_only=f,filled_qty=3.0,avg_fill_price=100.5,"
        'venue_order_id="42",parent="",attempts=1.0,message="",external=f 1735689600000000000\n'
    )


def test_ilp_bytes_for_a_timestamp_field_and_absent_text():
    macro = pd.DataFrame(
        {
            "symbol": ["fear_greed_crypto"],
            "ts": pd.Series([T0]).astype("datetime64[ns, UTC]"),
            "published_at": pd.Series([T0 + timedelta(hours=1)]).astype("datetime64[ns, UTC]"),
            "value": [55.0],
        }
    )
    assert bytes(ilp_buffer("macro", macro)).decode() == (
        "macro,symbol=fear_greed_crypto published_at=1735693200000000t,value=55.0 "
        "1735689600000000000\n"
    )


def test_the_fake_parses_what_the_client_writes():
    [(table, tags, fields, ts)] = parse_ilp(bytes(ilp_buffer("bars", _bars(1))).decode())
    assert (table, tags["symbol"], fields["close"], ts) == (
        "bars",
        "BTC USDT",
        100.5,
        1735689600000000000,
    )


# ----------------------------------------------------------------------------- SQL text


def test_ddl_strings():
    assert create_table_sql("bars") == (
        'CREATE TABLE IF NOT EXISTS "bars" ("symbol" SYMBOL, "ts" TIMESTAMP, "open" DOUBLE, '
        '"high" DOUBLE, "low" DOUBLE, "close" DOUBLE, "volume" DOUBLE) '
        'TIMESTAMP("ts") PARTITION BY DAY WAL DEDUP UPSERT KEYS("ts", "symbol")'
    )
    assert create_table_sql("flow") == (
        'CREATE TABLE IF NOT EXISTS "flow" ("symbol" SYMBOL, "ts" TIMESTAMP, "kind" SYMBOL, '
        '"published_at" TIMESTAMP, "value" DOUBLE) '
        'TIMESTAMP("ts") PARTITION BY DAY WAL DEDUP UPSERT KEYS("ts", "symbol", "kind")'
    )
    assert create_table_sql("news") == (
        'CREATE TABLE IF NOT EXISTS "news" ("id" VARCHAR, "ts" TIMESTAMP, "source" SYMBOL, '
        '"title" VARCHAR, "body" VARCHAR, "symbols" VARCHAR, "url" VARCHAR, "topic" SYMBOL) '
        'TIMESTAMP("ts") PARTITION BY DAY WAL DEDUP UPSERT KEYS("ts", "id")'
    )
    assert create_table_sql("orders").endswith('DEDUP UPSERT KEYS("ts", "client_order_id")')
    assert '"type" SYMBOL' in create_table_sql("orders")


BARS = '"symbol", "ts", "open", "high", "low", "close", "volume"'


def test_select_strings():
    end = T0 + timedelta(days=1)
    assert select_sql("bars", "BTCUSDT", T0, end) == (
        f'SELECT {BARS} FROM "bars" '
        "WHERE \"symbol\" = 'BTCUSDT' AND \"ts\" >= '2025-01-01T00:00:00.000000Z' "
        'AND "ts" < \'2025-01-02T00:00:00.000000Z\' ORDER BY "symbol", "ts"'
    )
    assert select_sql("news") == (
        'SELECT "id", "ts", "source", "title", "body", "symbols", "url", "topic" FROM "news" '
        'ORDER BY "ts", "id"'
    )
    assert latest_bars_sql("ETH", 3) == (
        f'SELECT {BARS} FROM (SELECT {BARS} FROM "bars" WHERE "symbol" = \'ETH\' '
        'ORDER BY "ts" DESC LIMIT 3) ORDER BY "ts"'
    )
    assert last_ts_sql("macro", "vix") == (
        'SELECT max("ts") AS "ts" FROM "macro" WHERE "symbol" = \'vix\''
    )
    assert existing_keys_sql("bars", _bars(3)) == (
        'SELECT "symbol", "ts" FROM "bars" '
        "WHERE \"ts\" >= '2025-01-01T00:00:00.000000Z' "
        "AND \"ts\" <= '2025-01-01T00:10:00.000000Z' AND \"symbol\" IN ('BTC USDT')"
    )
    assert series_sql("flow", "BTC", ["ts", "published_at", "value"], "inst_volume") == (
        'SELECT "ts", "published_at", "value" FROM "flow" WHERE "symbol" = \'BTC\' '
        'AND "kind" = \'inst_volume\' ORDER BY "ts"'
    )
    assert wal_status_sql("bars") == (
        "SELECT name, suspended, writerTxn, sequencerTxn FROM wal_tables() WHERE name = 'bars'"
    )


def test_text_is_quoted_so_it_cannot_end_the_literal():
    assert quote("x' OR '1'='1") == "'x'' OR ''1''=''1'"
    assert "\"symbol\" = 'O''Neil'" in select_sql("bars", "O'Neil")


def test_naive_bounds_are_refused():
    with pytest.raises(ValueError, match="naive"):
        select_sql("bars", "X", T0.replace(tzinfo=None))


def test_exec_json_becomes_typed_columns():
    frame = frame_from_exec(
        [
            {"name": "ts", "type": "TIMESTAMP"},
            {"name": "v", "type": "DOUBLE"},
            {"name": "n", "type": "LONG"},
            {"name": "s", "type": "SYMBOL"},
        ],
        [
            ["2025-01-01T00:05:00.000000Z", None, 3, "a"],
            ["2025-01-01T00:10:00.123456Z", 1.5, 4, "b"],
        ],
    )
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert frame["ts"].iloc[1] == pd.Timestamp("2025-01-01T00:10:00.123456Z")
    assert np.isnan(frame["v"].iloc[0]) and frame["v"].dtype == "float64"
    assert frame["n"].dtype == "int64"


# ----------------------------------------------------------------------------- URLs


def test_url_options():
    s = QuestDBStore.from_url("questdb://127.0.0.1:9100?pg_port=8813&auto_flush_rows=500")
    try:
        assert s.address == "http://127.0.0.1:9100"
        assert (s.pg_port, s.auto_flush_rows) == (8813, 500)
    finally:
        s.close()
    s = QuestDBStore.from_url("https://localhost")
    try:
        assert s.address == "https://localhost:9000"
    finally:
        s.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("questdb://h:9000?flush=1", "unknown options"),
        ("questdb://h:9000?auto_flush_rows=many", "auto_flush_rows='many'"),
        ("questdb://h:9000?auto_flush_rows=0", "auto_flush_rows=0"),
        ("questdb://:9000", "no host"),
    ],
)
def test_bad_questdb_urls(url, message):
    with pytest.raises(InputError, match=message):
        open_store(url)


# ----------------------------------------------------------------------------- over HTTP


@pytest.fixture
def fake():
    with FakeQuestDB() as q:
        yield q


def test_wire_bytes_are_the_ilp_buffer_and_requests_are_chunked(fake):
    bars = bars_frame(10)
    with open_store(f"{fake.url}?auto_flush_rows=4&retry_timeout=0") as store:
        assert store.write_bars(bars) == 10
    assert [body.count(b"\n") for body in fake.writes] == [4, 4, 2]
    assert b"".join(fake.writes) == bytes(ilp_buffer("bars", bars))
    assert all(path.startswith("/write") for path in fake.paths if "exec" not in path)


def test_nothing_listening_raises_store_unavailable_with_every_row_pending():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    bars = bars_frame(7)
    with open_store(f"http://127.0.0.1:{port}?retry_timeout=0&request_timeout=2000") as store:
        with pytest.raises(StoreUnavailable) as err:
            store.write_bars(bars)
    assert f"127.0.0.1:{port}" in str(err.value)
    assert err.value.table == "bars"
    pd.testing.assert_frame_equal(err.value.pending_rows, bars, check_dtype=False)
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
        QuestDBStore("127.0.0.1", port, retry_timeout=0).read_bars("BTCUSDT")


def test_rows_after_a_failed_request_are_handed_back_and_resend_safely(fake):
    bars = bars_frame(10)
    with open_store(f"{fake.url}?auto_flush_rows=4&retry_timeout=0") as store:
        fake.accept_before_failing, fake.fail_writes = 1, 1_000  # dies after one request
        with pytest.raises(StoreError) as err:
            store.write_bars(bars)
        assert "disk full" in str(err.value)
        assert err.value.table == "bars"
        pending = err.value.pending_rows
        pd.testing.assert_frame_equal(pending, bars.iloc[4:].reset_index(drop=True))
        assert len(fake.rows("bars")) == 4  # the acknowledged request is stored
        fake.fail_writes = 0
        assert store.write_bars(pending) == 6
        assert store.write_bars(bars) == 0
    assert len(fake.rows("bars")) == 10


def test_the_client_retries_a_failed_request_within_retry_timeout(fake):
    with open_store(f"{fake.url}?retry_timeout=5000") as store:
        fake.fail_writes = 2
        assert store.write_bars(bars_frame(3)) == 3
    assert fake.fail_writes == 0
    assert len(fake.rows("bars")) == 3


def test_write_waits_until_the_wal_is_applied(fake):
    with open_store(fake.url) as store:
        fake.apply_lag_polls = 3
        store.write_bars(bars_frame(5))
        polls = [q for q in fake.queries if "wal_tables()" in q]
        assert len(polls) == 4  # three "behind" answers, then caught up
        assert len(store.read_bars("BTCUSDT")) == 5


def test_suspended_table_is_an_error_not_a_silent_success(fake):
    with open_store(fake.url) as store:
        fake.suspended.add("bars")
        with pytest.raises(StoreError, match="RESUME WAL"):
            store.write_bars(bars_frame(2))


def test_server_sql_errors_carry_questdb_message(fake):
    with open_store(fake.url) as store:
        with pytest.raises(StoreError, match="rejected 'SELECT nope"):
            store._exec.query("SELECT nope FROM bars")
