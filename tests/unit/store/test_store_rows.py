"""DuckDBStore.write_rows (the journal's small-write path) stores what ``write`` stores, with
the same first/last-wins rules, rejections and errors."""

from __future__ import annotations

import math
from datetime import timedelta, timezone

import pandas as pd
import pytest

from app.errors import InputError
from app.schema.tables import TABLES
from app.store import DuckDBStore
from app.store.duckdb_store import create_table_sql
from app.store.errors import StoreError
from tests.builders import T0


def _order(i: int, **over: object) -> dict:
    row = {
        "symbol": "BTCUSDT",
        "ts": T0 + timedelta(minutes=5 * i),
        "client_order_id": f"BTCUSDT-{i}-L",
        "side": "BUY",
        "qty": 0.5,
        "type": "MARKET",
        "limit_price": math.nan,
        "stop_price": None,
        "stop_loss": 49_000.0,
        "take_profit": 51_000.0,
        "reduce_only": False,
        "status": "NEW",
        "filled_qty": 0.0,
        "avg_fill_price": math.nan,
        "venue_order_id": None,
        "role": "entry",
        "parent": None,
        "attempts": 1.0,
        "message": "",
        "external": False,
    }
    return {**row, **over}


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(TABLES["orders"]))
    frame["ts"] = pd.Series(pd.to_datetime(list(frame["ts"]), utc=True))
    return frame.astype({"ts": "datetime64[ns, UTC]"})


@pytest.fixture
def stores(tmp_path):
    with DuckDBStore(tmp_path / "rows.db") as rows, DuckDBStore(tmp_path / "frame.db") as frame:
        yield rows, frame


def test_rows_and_frames_store_the_same_values(stores) -> None:
    by_rows, by_frame = stores
    batches = [
        [_order(1), _order(2)],
        [_order(1, status="FILLED", filled_qty=0.5, avg_fill_price=50_010.5, attempts=2)],
        [_order(3, venue_order_id="77", parent="BTCUSDT-1-L", role="sl", reduce_only=True)],
    ]
    for batch in batches:
        assert by_rows.write_rows("orders", batch, upsert=True) == len(batch)
        assert by_frame.write("orders", _frame(batch), upsert=True) == len(batch)
    got, want = by_rows.read("orders"), by_frame.read("orders")
    pd.testing.assert_frame_equal(got, want)
    assert got.loc[got["client_order_id"] == "BTCUSDT-1-L", "status"].item() == "FILLED"
    assert got["limit_price"].isna().all() and len(got) == 3


def test_first_write_wins_unless_upserting_and_repeats_in_a_batch(stores) -> None:
    store, _ = stores
    assert store.write_rows("orders", [_order(1), _order(1, status="FILLED")]) == 1
    assert store.write_rows("orders", [_order(1, status="CANCELED"), _order(2)]) == 1
    assert store.read("orders")["status"].tolist() == ["NEW", "NEW"]
    twice = [_order(2, status="FILLED"), _order(2, status="CANCELED")]
    assert store.write_rows("orders", twice, upsert=True) == 1
    assert store.read("orders")["status"].tolist() == ["NEW", "CANCELED"]


def test_an_empty_key_is_rejected_and_counted_and_the_good_rows_kept(stores) -> None:
    store, _ = stores
    assert store.write_rows("orders", [_order(1, client_order_id=None), _order(2)]) == 1
    assert store.rejected["orders"] == 1
    assert store.read("orders")["client_order_id"].tolist() == ["BTCUSDT-2-L"]


def test_bad_values_name_the_column_and_value(stores) -> None:
    store, _ = stores
    with pytest.raises(InputError, match=r"orders.ts=datetime.datetime\(2025, 1, 1, 0, 5\)"):
        store.write_rows("orders", [_order(1, ts=(T0 + timedelta(minutes=5)).replace(tzinfo=None))])
    with pytest.raises(InputError, match="orders.qty='half': not numeric"):
        store.write_rows("orders", [_order(1, qty="half")])
    with pytest.raises(InputError, match="orders.reduce_only=1: expected True/False"):
        store.write_rows("orders", [_order(1, reduce_only=1)])
    with pytest.raises(InputError, match=r"row 0 lacks columns \['external'\]"):
        store.write_rows("orders", [{k: v for k, v in _order(1).items() if k != "external"}])
    with pytest.raises(InputError, match="unknown store table"):
        store.write_rows("trades", [_order(1)])
    assert store.read("orders").empty


def test_other_time_zones_are_the_same_instant(stores) -> None:
    store, _ = stores
    plus2 = (T0 + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=2)))
    store.write_rows("orders", [_order(1, ts=plus2)])
    assert store.read("orders")["ts"].iloc[0] == pd.Timestamp(T0 + timedelta(minutes=5))


def test_a_failed_write_keeps_nothing_and_hands_the_rows_back(stores) -> None:
    store, _ = stores
    store._con.execute("DROP TABLE orders")  # the same table, refusing a negative qty
    store._con.execute(create_table_sql("orders")[:-1] + ", CHECK (qty > 0))")
    store.write_rows("orders", [_order(1)])
    with pytest.raises(StoreError) as err:
        store.write_rows("orders", [_order(2), _order(3, qty=-1.0)], upsert=True)
    assert len(err.value.pending_rows) == 2 and err.value.table == "orders"
    assert store.read("orders")["client_order_id"].tolist() == ["BTCUSDT-1-L"]  # rolled back


def test_a_large_backlog_goes_through_the_bulk_path_with_the_same_result(stores) -> None:
    by_rows, by_frame = stores
    rows = [_order(i) for i in range(300)] + [_order(5, status="FILLED")]
    assert by_rows.write_rows("orders", rows, upsert=True) == 300
    assert by_frame.write("orders", _frame(rows), upsert=True) == 300
    pd.testing.assert_frame_equal(by_rows.read("orders"), by_frame.read("orders"))
    assert by_rows.write_rows("orders", rows) == 0  # first write wins: all stored already
