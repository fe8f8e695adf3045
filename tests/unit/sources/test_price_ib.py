"""IBSource edges: BarData -> Bar mapping, keepUpToDate closed-bar relay, refused connection."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from ib_async import BarData, BarDataList, Forex, Stock

from app.config import IBSettings
from app.errors import InputError
from app.schema.bars import validate_bars
from app.sources import SourceUnavailable
from app.sources.ib_source import (
    ClosedBarRelay,
    IBSource,
    bar_from_ib,
    contract_for,
    feed_for,
    ib_bars_to_frame,
)
from app.types import AssetClass, Bar, InvalidField

T0 = datetime(2025, 6, 4, 13, 30, tzinfo=UTC)


def _ib_bar(i: int, *, volume: float = 1200.0, tz: object = UTC) -> BarData:
    stamp = (T0 + timedelta(minutes=5 * i)).astimezone(tz)  # type: ignore[arg-type]
    p = 200.0 + i
    return BarData(
        date=stamp,
        open=p,
        high=p + 1,
        low=p - 1,
        close=p + 0.5,
        volume=volume,
        average=p,
        barCount=42,
    )


def test_bar_data_maps_to_a_utc_bar() -> None:
    bar = bar_from_ib(_ib_bar(2), "AAPL")
    assert bar == Bar("AAPL", T0 + timedelta(minutes=10), 202.0, 203.0, 201.0, 202.5, 1200.0)


def test_exchange_local_times_are_converted_to_utc() -> None:
    new_york = _ib_bar(0, tz=ZoneInfo("America/New_York"))
    assert new_york.date.hour == 9  # what IB sends with formatDate=1
    assert bar_from_ib(new_york, "AAPL").ts == T0


def test_naive_or_daily_dates_are_refused_naming_the_field() -> None:
    naive = BarData(date=datetime(2025, 6, 4, 13, 30), open=1, high=2, low=1, close=1, volume=1)
    with pytest.raises(InvalidField, match="BarData.date.*naive"):
        bar_from_ib(naive, "AAPL")
    daily = BarData(date=date(2025, 6, 4), open=1, high=2, low=1, close=1, volume=1)
    with pytest.raises(InvalidField, match="daily date"):
        bar_from_ib(daily, "AAPL")


def test_midpoint_volume_minus_one_becomes_zero_but_trades_volume_is_checked() -> None:
    assert bar_from_ib(_ib_bar(0, volume=-1), "EURUSD", has_volume=False).volume == 0.0
    with pytest.raises(InvalidField, match="volume"):
        bar_from_ib(_ib_bar(0, volume=-1), "AAPL", has_volume=True)


def test_bar_list_to_frame_then_validation_rejects_the_bad_ones() -> None:
    broken = BarData(date=T0 + timedelta(minutes=15), open=5, high=4, low=3, close=5, volume=1)
    bars = [_ib_bar(0), _ib_bar(1), _ib_bar(2), broken]
    frame = ib_bars_to_frame(bars, "AAPL")
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    result = validate_bars(frame, "AAPL")
    assert len(result.good) == 3 and result.counts["high_low"] == 1


def test_contracts_and_feeds_per_asset_class() -> None:
    stock = contract_for("AAPL", AssetClass.STOCKS)
    assert isinstance(stock, Stock) and (stock.exchange, stock.currency) == ("SMART", "USD")
    fx = contract_for("EUR/USD", AssetClass.FOREX)
    assert isinstance(fx, Forex) and fx.exchange == "IDEALPRO"
    assert (fx.symbol, fx.currency) == ("EUR", "USD")
    assert feed_for(AssetClass.STOCKS).what_to_show == "TRADES"
    assert feed_for(AssetClass.FOREX).what_to_show == "MIDPOINT"
    with pytest.raises(InputError, match="use the ccxt source for crypto"):
        contract_for("BTCUSDT", AssetClass.CRYPTO)
    with pytest.raises(InputError, match="forex pair"):
        contract_for("EURO", AssetClass.FOREX)


def test_keep_up_to_date_relay_emits_a_bar_only_once_it_closed() -> None:
    closed: list[Bar] = []
    bars = BarDataList([_ib_bar(0), _ib_bar(1)])
    bars.updateEvent.connect(ClosedBarRelay("AAPL", closed.append, has_volume=True), keep_ref=True)
    # IB revises the forming bar 1 (no new bar): nothing is final yet
    bars[-1] = _ib_bar(1, volume=1500.0)
    bars.updateEvent.emit(bars, False)
    assert closed == []
    # bar 2 starts: bar 1, with its last revision, is now final
    bars.append(_ib_bar(2))
    bars.updateEvent.emit(bars, True)
    assert [b.ts for b in closed] == [T0 + timedelta(minutes=5)]
    assert closed[0].volume == 1500.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_names_host_and_port() -> None:
    port = _closed_port()
    source = IBSource(IBSettings(host="127.0.0.1", port=port, client_id=3), connect_timeout=2)
    with pytest.raises(SourceUnavailable, match=rf"IB at 127\.0\.0\.1:{port} \(client id 3\)"):
        asyncio.run(source.history("AAPL", AssetClass.STOCKS))
    assert not source.ib.isConnected()
