"""The TimeSeriesStore contract, run on every backend.

- duckdb: a DuckDB file in tmp_path (always).
- questdb-loopback: the QuestDB store over real HTTP/ILP against the loopback fake server
  (always; its SELECTs run on DuckDB, see tests/unit/store/questdb_fake.py).
- questdb: a real QuestDB server at env QUESTDB_URL (e.g. http://127.0.0.1:9000); skipped
  when unset. Symbols are unique per test so a long-lived server can be reused.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from app.store import TABLES, TimeSeriesStore, open_store
from app.store.schema import column_type
from tests.builders import T0, bars_frame
from tests.unit.store.questdb_fake import FakeQuestDB

BACKENDS = ["duckdb", "questdb-loopback", "questdb"]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Iterator[TimeSeriesStore]:
    if request.param == "duckdb":
        s = open_store(f"duckdb:///{tmp_path}/contract.db")
        yield s
        s.close()
    elif request.param == "questdb-loopback":
        with FakeQuestDB() as fake:
            s = open_store(f"{fake.url}?retry_timeout=0&auto_flush_rows=64")
            yield s
            s.close()
    else:
        url = os.environ.get("QUESTDB_URL")
        if not url:
            pytest.skip("QUESTDB_URL not set: no QuestDB server to run the contract against")
        s = open_store(url)
        yield s
        s.close()


@pytest.fixture
def sym() -> str:
    """A symbol no other test (or earlier run on a shared server) has used."""
    return f"T{uuid.uuid4().hex[:10].upper()}"


def table_frame(table: str, n: int, symbol: str, seed: int = 0) -> pd.DataFrame:
    """``n`` valid rows for any table, 5 minutes apart, keyed on ``symbol``."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(T0, periods=n, freq="5min", tz="UTC").astype("datetime64[ns, UTC]")
    data: dict[str, object] = {}
    for column in TABLES[table]:
        kind = column_type(column)
        if column == "ts":
            data[column] = ts
        elif column == "published_at":
            data[column] = ts + pd.Timedelta(minutes=7)
        elif column == "symbol":
            data[column] = symbol
        elif column == "symbols":
            data[column] = f"{symbol}|OTHER"
        elif column in ("id", "news_id", "client_order_id", "fill_id", "venue_order_id"):
            data[column] = [f"{symbol}-{column}-{i}" for i in range(n)]
        elif kind == "sym":
            data[column] = [f"{column}{i % 3}" for i in range(n)]
        elif kind == "str":
            data[column] = [f"{column} text, with 'quotes' and \"double\" {i}" for i in range(n)]
        elif kind == "bool":
            data[column] = np.arange(n) % 2 == 0
        else:
            data[column] = rng.normal(100.0, 5.0, n)
    return pd.DataFrame(data)


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False
    )
    for column in got.columns:
        if column_type(column) == "ts":
            assert str(got[column].dtype) == "datetime64[ns, UTC]", column


# ----------------------------------------------------------------------------- bars


def test_rewrite_is_idempotent_and_returns_zero(store, sym):
    assert isinstance(store, TimeSeriesStore)
    bars = bars_frame(50, symbol=sym)
    assert store.write_bars(bars) == 50
    assert store.write_bars(bars) == 0
    assert store.write_bars(bars_frame(60, symbol=sym)) == 10
    assert len(store.read_bars(sym)) == 60


def test_bars_round_trip_exactly(store, sym):
    bars = bars_frame(30, symbol=sym)
    store.write_bars(bars)
    assert_same_rows(store.read_bars(sym), bars)


def test_range_reads_are_half_open(store, sym):
    bars = bars_frame(20, symbol=sym)
    store.write_bars(bars)
    start, end = T0 + timedelta(minutes=25), T0 + timedelta(minutes=50)
    got = store.read_bars(sym, start=start, end=end)
    assert got["ts"].min() == pd.Timestamp(start)  # start included
    assert got["ts"].max() == pd.Timestamp(end - timedelta(minutes=5))  # end excluded
    assert len(got) == 5
    assert len(store.read_bars(sym, start=start)) == 15
    assert len(store.read_bars(sym, end=end)) == 10


def test_latest_n_bars_oldest_first(store, sym):
    bars = bars_frame(20, symbol=sym)
    store.write_bars(bars)
    got = store.latest_bars(sym, 4)
    assert_same_rows(got, bars.iloc[-4:])
    assert len(store.latest_bars(sym, 100)) == 20
    assert store.latest_bars(sym, 0).empty


def test_last_ts_and_symbols(store, sym):
    assert store.last_ts("bars", sym) is None
    store.write_bars(bars_frame(12, symbol=sym))
    store.write_bars(bars_frame(3, symbol=sym + "B"))
    assert store.last_ts("bars", sym) == T0 + timedelta(minutes=55)
    assert {sym, sym + "B"} <= set(store.symbols("bars"))


def test_reads_keep_symbols_apart(store, sym):
    store.write_bars(bars_frame(5, symbol=sym))
    store.write_bars(bars_frame(7, symbol=sym + "B", seed=3))
    assert set(store.read_bars(sym)["symbol"]) == {sym}
    assert len(store.read("bars", sym + "B")) == 7


def test_corrected_bar_first_write_wins_unless_upsert(store, sym):
    bars = bars_frame(5, symbol=sym)
    store.write_bars(bars)
    corrected = bars.assign(close=bars["close"] + 1.0)
    assert store.write_bars(corrected) == 0
    assert store.read_bars(sym)["close"].tolist() == pytest.approx(bars["close"].tolist())
    assert store.write_bars(corrected, upsert=True) == 5
    got = store.read_bars(sym)
    assert len(got) == 5
    assert got["close"].tolist() == pytest.approx(corrected["close"].tolist())


# ----------------------------------------------------------------------------- other tables


@pytest.mark.parametrize("table", [t for t in TABLES if t != "bars"])
def test_non_bar_tables_round_trip_and_are_idempotent(store, sym, table):
    frame = table_frame(table, 6, sym)
    assert store.write(table, frame) == 6
    assert store.write(table, frame) == 0
    assert_same_rows(store.read(table, sym), frame)
    assert store.last_ts(table, sym) == T0 + timedelta(minutes=25)
    assert sym in store.symbols(table)


def test_missing_optional_values_come_back_missing(store, sym):
    orders = table_frame("orders", 2, sym)
    orders["limit_price"] = [np.nan, 101.5]
    store.write("orders", orders)
    got = store.read("orders", sym)
    assert np.isnan(got["limit_price"].iloc[0])
    assert got["limit_price"].iloc[1] == 101.5


# ----------------------------------------------------------------------------- as-of join


def _macro(sym: str, rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    """rows of (ts minutes after T0, published minutes after T0, value)."""
    return pd.DataFrame(
        {
            "symbol": sym,
            "ts": [T0 + timedelta(minutes=t) for t, _, _ in rows],
            "published_at": [T0 + timedelta(minutes=p) for _, p, _ in rows],
            "value": [v for _, _, v in rows],
        }
    ).astype({"ts": "datetime64[ns, UTC]", "published_at": "datetime64[ns, UTC]"})


def test_asof_join_uses_only_values_published_by_the_bar_close(store, sym):
    store.write_bars(bars_frame(6, symbol=sym))  # bars open at 0,5,...,25; close 5 min later
    series = sym + "FG"
    store.write(
        "macro",
        _macro(
            series,
            [
                (0, 5, 1.0),  # published exactly at the first bar's close: usable there
                (1, 11, 2.0),  # stamped early, published 1 min after bar 5's close
                (12, 20, 3.0),  # published at bar 15's close
            ],
        ),
    )
    got = store.asof_join(sym, "macro", series)
    assert list(got.columns) == ["ts", "value"]
    assert got["ts"].tolist() == [T0 + timedelta(minutes=5 * i) for i in range(6)]
    assert got["value"].tolist() == [1.0, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_asof_join_is_nan_before_anything_is_published(store, sym):
    store.write_bars(bars_frame(4, symbol=sym))
    series = sym + "FG"
    store.write("macro", _macro(series, [(0, 12, 7.0)]))
    got = store.asof_join(sym, "macro", series)
    assert np.isnan(got["value"].iloc[:2]).all()
    assert got["value"].iloc[2:].tolist() == [7.0, 7.0]
    assert np.isnan(store.asof_join(sym, "macro", "NO_SUCH_SERIES")["value"]).all()


def test_asof_join_on_flow_can_select_one_kind(store, sym):
    store.write_bars(bars_frame(3, symbol=sym))
    flow = pd.DataFrame(
        {
            "symbol": sym,
            "ts": [T0, T0],
            "kind": ["exchange_net_flow", "whale_transfers"],
            "published_at": [T0, T0],
            "value": [-5.0, 12.0],
        }
    ).astype({"ts": "datetime64[ns, UTC]", "published_at": "datetime64[ns, UTC]"})
    store.write("flow", flow)
    got = store.asof_join(sym, "flow", sym, kind="whale_transfers")
    assert got["value"].tolist() == [12.0, 12.0, 12.0]


def test_asset_classes_are_remembered_once_and_conflicts_name_both(store, sym):
    from app.errors import InputError
    from app.types import AssetClass

    other = f"{sym}X"
    assert sym not in store.asset_classes()
    assert store.record_asset_classes({sym: AssetClass.CRYPTO, other: AssetClass.STOCKS}) == 2
    assert store.record_asset_classes({sym: AssetClass.CRYPTO}) == 0  # idempotent
    classes = store.asset_classes()
    assert classes[sym] is AssetClass.CRYPTO and classes[other] is AssetClass.STOCKS
    with pytest.raises(InputError, match=rf"{sym} is crypto in the store, not forex"):
        store.record_asset_classes({sym: AssetClass.FOREX, f"{sym}NEW": AssetClass.FOREX})
    assert f"{sym}NEW" not in store.asset_classes()  # a conflict writes nothing
