"""DuckDB-specific behaviour: corrections, rejected rows, file ownership, URL parsing."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pandas as pd
import pytest

from app.errors import InputError
from app.store import DuckDBStore, open_store
from app.store.duckdb_store import create_table_sql
from tests.builders import T0, bars_frame


@pytest.fixture
def store(tmp_path):
    with DuckDBStore(tmp_path / "s.db") as s:
        yield s


def test_first_write_wins_by_default(store):
    original = bars_frame(20)
    corrected = original.assign(close=original["close"] * 2, high=original["high"] * 2)
    assert store.write_bars(original) == 20
    assert store.write_bars(corrected) == 0
    pd.testing.assert_series_equal(store.read_bars("BTCUSDT")["close"], original["close"])


def test_upsert_replaces_stored_rows_and_adds_new_ones(store):
    original = bars_frame(20)
    store.write_bars(original)
    corrected = bars_frame(25).assign(close=lambda f: f["close"] + 1.0)
    assert store.write_bars(corrected, upsert=True) == 25
    got = store.read_bars("BTCUSDT")
    assert len(got) == 25
    assert got["close"].tolist() == pytest.approx(corrected["close"].tolist())


def test_repeated_key_inside_one_batch_keeps_first_or_last(store):
    frame = bars_frame(3)
    dup = frame.iloc[[1]].assign(close=999.0)
    batch = pd.concat([frame, dup], ignore_index=True)
    assert store.write_bars(batch) == 3
    assert store.read_bars("BTCUSDT")["close"].iloc[1] == frame["close"].iloc[1]
    assert store.write_bars(batch, upsert=True) == 3
    assert store.read_bars("BTCUSDT")["close"].iloc[1] == 999.0


def test_row_with_empty_key_is_rejected_and_counted_good_rows_kept(store):
    frame = bars_frame(5)
    frame.loc[2, "symbol"] = None
    assert store.write_bars(frame) == 4
    assert store.rejected["bars"] == 1
    assert len(store.read_bars("BTCUSDT")) == 4


def test_naive_timestamps_are_refused_naming_the_column(store):
    frame = bars_frame(3)
    frame["ts"] = frame["ts"].dt.tz_localize(None)
    with pytest.raises(InputError, match=r"bars\.ts"):
        store.write_bars(frame)


def test_non_utc_timestamps_are_stored_as_the_same_instant(store):
    frame = bars_frame(3)
    frame["ts"] = frame["ts"].dt.tz_convert("America/New_York")
    store.write_bars(frame)
    assert store.read_bars("BTCUSDT")["ts"].iloc[0] == pd.Timestamp(T0)


def test_missing_column_and_unknown_table_are_input_errors(store):
    with pytest.raises(InputError, match="volume"):
        store.write_bars(bars_frame(3).drop(columns=["volume"]))
    with pytest.raises(InputError, match="'trades'"):
        store.write("trades", bars_frame(3))
    with pytest.raises(InputError, match="close"):
        store.write_bars(bars_frame(3).assign(close="abc"))


def test_read_rejects_naive_bounds(store):
    with pytest.raises(ValueError, match="naive"):
        store.read_bars("BTCUSDT", start=T0.replace(tzinfo=None))


def test_asof_join_rejects_columns_outside_the_table(store):
    with pytest.raises(InputError, match="value; DROP"):
        store.asof_join("BTCUSDT", "macro", "fg", value_column="value; DROP TABLE bars")
    with pytest.raises(InputError, match="not of type ts"):
        store.asof_join("BTCUSDT", "macro", "fg", time_column="value")


def test_empty_reads_keep_column_names_and_dtypes(store):
    empty = store.read_bars("NOPE")
    assert list(empty.columns) == ["symbol", "ts", "open", "high", "low", "close", "volume"]
    assert str(empty["ts"].dtype) == "datetime64[ns, UTC]"
    assert empty["close"].dtype == "float64"
    assert store.last_ts("bars", "NOPE") is None


def test_data_survives_reopening_the_file(tmp_path):
    path = tmp_path / "deep" / "store.db"
    with DuckDBStore(path) as s:
        s.write_bars(bars_frame(10))
    with DuckDBStore(path) as s:
        assert s.last_ts("bars", "BTCUSDT") == T0 + timedelta(minutes=45)
        assert s.write_bars(bars_frame(10)) == 0


def test_second_process_gets_store_unavailable_naming_the_file(tmp_path):
    path = tmp_path / "owned.db"
    code = (
        "from app.store import DuckDBStore, StoreUnavailable\n"
        f"try:\n    DuckDBStore({str(path)!r})\n"
        "except StoreUnavailable as e:\n    print('UNAVAILABLE', e)\n"
    )
    with DuckDBStore(path):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
    assert "UNAVAILABLE" in out.stdout
    assert str(path) in out.stdout


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("duckdb:///runs/store.db", "runs/store.db"),
        ("duckdb:////tmp/abs.db", "/tmp/abs.db"),
        ("duckdb://:memory:", ":memory:"),
    ],
)
def test_duckdb_url_forms(url, path, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the relative form creates runs/ under the working dir
    s = open_store(url)
    try:
        assert isinstance(s, DuckDBStore)
        assert s.path == path
        assert s.url == url
    finally:
        s.close()


@pytest.mark.parametrize(
    "url", ["sqlite:///x.db", "duckdb://host/x.db", "duckdb://", "no-scheme", "duckdb:///"]
)
def test_bad_urls_name_the_url(url):
    with pytest.raises(InputError, match="url="):
        open_store(url)


def test_create_table_sql_types():
    assert create_table_sql("orders") == (
        "CREATE TABLE IF NOT EXISTS orders (symbol VARCHAR, ts TIMESTAMPTZ, "
        "client_order_id VARCHAR, side VARCHAR, qty DOUBLE, type VARCHAR, "
        "limit_price DOUBLE, stop_price DOUBLE, "
        "stop_loss DOUBLE, take_profit DOUBLE, reduce_only BOOLEAN, status VARCHAR, "
        "filled_qty DOUBLE, avg_fill_price DOUBLE, venue_order_id VARCHAR, role VARCHAR, "
        "parent VARCHAR, attempts DOUBLE, message VARCHAR, external BOOLEAN)"
    )


def test_nanosecond_stamps_are_idempotent_too(store):
    frame = bars_frame(3)
    frame["ts"] = frame["ts"] + pd.Timedelta(nanoseconds=789)
    assert store.write_bars(frame) == 3
    assert store.write_bars(frame) == 0
    assert store.write_bars(frame, upsert=True) == 3
    assert len(store.read_bars("BTCUSDT")) == 3


def test_scores_of_two_sentiment_models_for_one_item_are_both_kept():
    from app.store import open_store

    store = open_store("duckdb://:memory:")
    store.create_schema()
    ts = pd.Timestamp("2025-01-01T00:00:00Z").as_unit("ns")
    row = {"symbol": "BTCUSDT", "ts": ts, "news_id": "n1", "score": 0.5, "model": "a"}
    assert store.write("sentiment", pd.DataFrame([row])) == 1
    assert store.write("sentiment", pd.DataFrame([{**row, "score": -0.2, "model": "b"}])) == 1
    assert store.write("sentiment", pd.DataFrame([row])) == 0  # same model again: idempotent
    got = store.read("sentiment", "BTCUSDT").sort_values("model")
    assert list(got["model"]) == ["a", "b"] and list(got["score"]) == [0.5, -0.2]


def test_asset_classes_survive_reopening_and_bad_names_are_errors(tmp_path):
    from app.types import AssetClass

    url = f"duckdb:///{tmp_path}/s.db"
    with open_store(url) as s:
        s.record_asset_classes({"XRPUSDT": AssetClass.CRYPTO})
    with open_store(url) as s:
        assert s.asset_classes() == {"XRPUSDT": AssetClass.CRYPTO}
        s._run("INSERT INTO symbols VALUES ('BAD', TIMESTAMPTZ '1970-01-01 00:00:00+00', 'bonds')")
        with pytest.raises(InputError, match=r"symbols.asset_class='bonds' for 'BAD'"):
            s.asset_classes()
