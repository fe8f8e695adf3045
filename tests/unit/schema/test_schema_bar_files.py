"""CsvSource: layouts, robust line splitting, Parquet, 1-minute -> 5-minute resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.errors import InputError
from app.schema.bar_files import (
    YFINANCE_LAYOUT,
    CsvLayout,
    CsvSource,
    resample_to_5m,
    symbol_from_filename,
)
from tests.builders import bars_frame

HEADER = "ts,open,high,low,close,volume"


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _iso(frame: pd.DataFrame) -> pd.Series:
    return frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_shared_layout_round_trips_values_exactly(tmp_path: Path) -> None:
    bars = bars_frame(50)
    path = tmp_path / "BTCUSDT_5m.csv"
    bars.assign(ts=_iso(bars)).drop(columns="symbol").to_csv(path, index=False)
    result = CsvSource(path).load("BTCUSDT")
    pd.testing.assert_frame_equal(result.good, bars, check_dtype=False)
    assert str(result.good["ts"].dtype) == "datetime64[ns, UTC]"


def test_a_garbage_line_is_one_unparseable_reject_named_by_line_number(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "x.csv",
        [
            HEADER,
            "2025-01-01T00:00:00Z,1,2,0.5,1.5,10",
            "<<<html garbage>>>",
            "2025-01-01T00:05:00Z,1,2,0.5,1.5,10,extra,fields",
            "",
            "2025-01-01T00:10:00Z,1,2,0.5,1.5,10",
            "2025-01-01T00:15:00Z,1,2,0.5,oops,10",
        ],
    )
    result = CsvSource(path).load("X")
    assert result.good["ts"].dt.minute.tolist() == [0, 10]
    assert result.rejects[["row", "reason"]].values.tolist() == [
        [3, "unparseable"],
        [4, "unparseable"],
        [7, "unparseable"],
    ]
    details = result.rejects["detail"].tolist()
    assert "line has 1 fields, expected 6: '<<<html garbage>>>'" in details[0]
    assert "line has 8 fields" in details[1]
    assert "close='oops' is not a number" in details[2]
    assert result.rows_read == 5  # the blank line is not a row


def test_quoted_fields_are_split_by_the_csv_rules(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "q.csv",
        [HEADER, '"2025-01-01T00:00:00Z","1","2","0.5","1.5","10"', '"a,b",1,2'],
    )
    result = CsvSource(path).load("X")
    assert len(result.good) == 1
    assert result.rejects["detail"].tolist() == ["line has 3 fields, expected 6: '\"a,b\",1,2'"]


def test_column_mapping_and_yfinance_export(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "SPY.csv",
        [
            "Datetime,Open,High,Low,Close,Volume,Symbol",
            "2025-06-04 13:30:00+00:00,596.96,597.60,596.78,597.55,2860540,SPY",
            "2025-06-04 13:35:00+00:00,597.58,597.91,597.41,597.77,1301964,SPY",
        ],
    )
    result = CsvSource(path, layout=YFINANCE_LAYOUT).load("SPY")
    assert result.good["ts"].iloc[1] == pd.Timestamp("2025-06-04T13:35:00Z")
    assert result.good["volume"].tolist() == [2860540.0, 1301964.0]


def test_epoch_milliseconds_with_custom_names(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "k.csv",
        ["open_time;o;h;l;c;v", "1735689600000;1;2;0.5;1.5;3", "1735689900000;1;2;0.5;1.5;4"],
    )
    layout = CsvLayout(
        columns={
            "open_time": "ts",
            "o": "open",
            "h": "high",
            "l": "low",
            "c": "close",
            "v": "volume",
        },
        ts_unit="ms",
        delimiter=";",
    )
    good = CsvSource(path, layout=layout).load("X").good
    assert good["ts"].tolist() == [
        pd.Timestamp("2025-01-01T00:00:00Z"),
        pd.Timestamp("2025-01-01T00:05:00Z"),
    ]


def test_missing_columns_unreadable_and_empty_files_name_the_file(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.csv", ["time,open,high,low,close", "x,1,2,3,4"])
    with pytest.raises(InputError, match=r"bad\.csv: missing column\(s\) \['ts', 'volume'\]"):
        CsvSource(bad).load("X")
    with pytest.raises(InputError, match=r"nope\.csv: no such file"):
        CsvSource(tmp_path / "nope.csv").load("X")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match=r"empty\.csv: empty file"):
        CsvSource(tmp_path / "empty.csv").load("X")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match=r"bin\.csv: not UTF-8"):
        CsvSource(tmp_path / "bin.csv").load("X")
    with pytest.raises(InputError, match="column mapping targets"):
        CsvLayout(columns={"Date": "timestamp"})


def test_parquet_files_read_through_the_same_validation(tmp_path: Path) -> None:
    bars = bars_frame(20)
    bars.loc[5, "low"] = bars.loc[5, "high"] * 2  # high < low
    path = tmp_path / "ETHUSDT_5m.parquet"
    bars.drop(columns="symbol").to_parquet(path)
    result = CsvSource(path).load("ETHUSDT")
    assert len(result.good) == 19
    assert result.rejects[["row", "reason"]].values.tolist() == [[5, "high_low"]]
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(InputError, match=r"broken\.parquet: not a readable Parquet file"):
        CsvSource(tmp_path / "broken.parquet").load("X")


def _one_minute(n: int, start: str = "2025-01-01T00:00:00Z") -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="1min", tz="UTC")
    rng = np.random.default_rng(1)
    close = 100 + rng.normal(0, 1, n).cumsum()
    open_ = close + rng.normal(0, 0.1, n)
    return pd.DataFrame(
        {
            "symbol": "X",
            "ts": ts.astype("datetime64[ns, UTC]"),
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": rng.uniform(1, 5, n),
        }
    )


def test_resample_bins_are_left_closed_and_labelled_by_their_start() -> None:
    m1 = _one_minute(10)
    bars, dropped = resample_to_5m(m1)
    assert dropped == 0
    first = m1.iloc[:5]
    assert bars["ts"].tolist() == [
        pd.Timestamp("2025-01-01T00:00:00Z"),
        pd.Timestamp("2025-01-01T00:05:00Z"),
    ]
    row = bars.iloc[0]
    assert row["open"] == first["open"].iloc[0] and row["close"] == first["close"].iloc[-1]
    assert row["high"] == first["high"].max() and row["low"] == first["low"].min()
    assert row["volume"] == pytest.approx(first["volume"].sum())


def test_incomplete_bins_are_dropped_or_kept_on_request() -> None:
    m1 = _one_minute(12).drop(index=[7])  # bin 00:05 misses a minute, bin 00:10 has 2 of 5
    bars, dropped = resample_to_5m(m1)
    assert bars["ts"].dt.minute.tolist() == [0] and dropped == 2
    kept, dropped = resample_to_5m(m1, drop_incomplete=False)
    assert kept["ts"].dt.minute.tolist() == [0, 5, 10] and dropped == 0


def test_source_resamples_a_one_minute_file(tmp_path: Path) -> None:
    m1 = _one_minute(15, start="2025-01-01T00:02:00Z")  # 00:02..00:16: 00:00, 00:15 partial
    path = tmp_path / "BTCUSDT_1m.csv"
    m1.assign(ts=_iso(m1)).drop(columns="symbol").to_csv(path, index=False)
    result = CsvSource(path, resample_1m=True).load("BTCUSDT")
    assert result.rows_read == 15 and result.rows_rejected == 0
    assert result.good["ts"].dt.minute.tolist() == [5, 10]
    assert result.incomplete_bins_dropped == 2


def test_symbol_from_filename() -> None:
    assert symbol_from_filename(Path("d/BTCUSDT_5m.csv")) == "BTCUSDT"
    assert symbol_from_filename(Path("EURUSD.parquet")) == "EURUSD"
