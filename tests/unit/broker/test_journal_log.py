"""The journal's write-ahead log: a flush is durable without a store write, a restart between two
syncs gets every logged row back into the store, a torn last line is dropped, and a store that
fails keeps the log for the next try."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest

from app.broker.journal import Journal
from app.broker.journal_log import JournalLog
from app.broker.order_state import OrderRecord
from app.store import DuckDBStore
from app.store.errors import StoreError
from app.types import Fill, Order, OrderStatus, Side
from tests.builders import T0


def _records() -> tuple[OrderRecord, OrderRecord, Fill]:
    order = Order("BTCUSDT-1-L", "BTCUSDT", Side.BUY, 0.25, T0, stop_loss=49_000.0)
    new = OrderRecord(order, OrderStatus.ACCEPTED, venue_order_id="v1", attempts=1)
    filled = replace(new, status=OrderStatus.FILLED, filled_qty=0.25, avg_fill_price=50_000.1)
    fill = Fill(
        "BTCUSDT-1-L", "BTCUSDT", Side.BUY, 0.25, 50_000.1, 0.0125, T0 + timedelta(1), "entry", "t9"
    )
    return new, filled, fill


def _journal(tmp_path) -> Journal:  # noqa: ANN001
    return Journal(DuckDBStore(tmp_path / "journal.db"), JournalLog(tmp_path / "journal.log"))


def test_flush_logs_without_storing_and_a_restart_stores_the_log(tmp_path) -> None:
    new, filled, fill = _records()
    journal = _journal(tmp_path)
    journal.write_order(new)
    assert journal.flush() == 1 and journal.pending == 0
    journal.write_order(filled)
    journal.write_fill(fill, seq=1, cursor="c1")
    journal.flush()
    assert journal.store.read("orders").empty and journal.store.read("fills").empty
    assert len(journal.log.read()) == 2
    journal.store.close()  # a crash: no sync

    again = _journal(tmp_path)
    state = again.load()
    assert state.orders["BTCUSDT-1-L"].status is OrderStatus.FILLED  # the last logged state
    assert state.orders["BTCUSDT-1-L"].avg_fill_price == 50_000.1
    assert state.orders["BTCUSDT-1-L"].order.stop_loss == 49_000.0
    assert math.isnan(again.store.read("orders")["limit_price"].iloc[0])
    assert [f.fill_id for f in state.fills] == ["t9"] and state.cursor == "c1"
    assert state.fills[0] == fill
    assert again.log.read() == [] and len(again.store.read("orders")) == 1
    again.store.close()


def test_sync_stores_once_per_call_and_empties_the_log(tmp_path) -> None:
    new, filled, fill = _records()
    journal = _journal(tmp_path)
    journal.write_order(new)
    journal.flush()
    journal.write_order(filled)
    journal.write_fill(fill, seq=1, cursor=None)
    assert journal.sync() == 2  # one order row (its last state) and one fill
    assert journal.log.read() == []
    assert journal.store.read("orders")["status"].tolist() == ["FILLED"]
    assert journal.sync() == 0
    journal.store.close()


def test_a_torn_last_line_is_a_flush_that_never_returned(tmp_path) -> None:
    new, filled, _ = _records()
    journal = _journal(tmp_path)
    journal.write_order(new)
    journal.flush()
    journal.store.close()
    with (tmp_path / "journal.log").open("a") as fh:
        fh.write('{"orders": [{"client_order_id": "BTCUSDT-1-L", "sta')  # killed mid-write
    again = _journal(tmp_path)
    assert again.load().orders["BTCUSDT-1-L"].status is OrderStatus.ACCEPTED
    again.store.close()


class FailingStore(DuckDBStore):
    fail = True

    def write_rows(self, table, rows, *, upsert=False):  # noqa: ANN001, ANN201
        if self.fail:
            raise StoreError("disk full", table=table)
        return super().write_rows(table, rows, upsert=upsert)


def test_a_failed_sync_keeps_the_log_for_the_next_one(tmp_path) -> None:
    new, _, _ = _records()
    journal = Journal(FailingStore(tmp_path / "journal.db"), JournalLog(tmp_path / "journal.log"))
    journal.write_order(new)
    journal.flush()  # durable in the log: the venue call may go ahead
    with pytest.raises(StoreError, match="disk full"):
        journal.sync()
    assert len(journal.log.read()) == 1
    journal.store.fail = False
    assert journal.sync() == 1 and journal.log.read() == []
    assert journal.store.read("orders")["client_order_id"].tolist() == ["BTCUSDT-1-L"]
    journal.store.close()
