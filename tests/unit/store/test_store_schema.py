"""Batch preparation shared by both backends: the fast uniqueness test never misses a repeat."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.store.schema import column_type, may_repeat_keys, prepare_batch
from tests.builders import T0, bars_frame


@pytest.mark.parametrize("seed", range(30))
def test_fast_uniqueness_test_agrees_with_a_full_hash(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    frame = pd.DataFrame(
        {
            "symbol": rng.choice(["A", "B", "C"], n),
            "kind": rng.choice(["x", "y"], n),
            "ts": (T0 + pd.to_timedelta(rng.integers(0, 12, n) * 5, unit="min")),
        }
    ).astype({"ts": "datetime64[ns, UTC]"})
    if rng.random() < 0.5:  # many ingest batches arrive grouped and sorted
        frame = frame.sort_values(["symbol", "kind", "ts"]).drop_duplicates(
            ["symbol", "kind", "ts"]
        )
    for key in (["symbol", "ts"], ["symbol", "ts", "kind"], ["ts"]):
        if frame.duplicated(subset=key).any():
            assert may_repeat_keys(frame, key), (key, frame)


def test_grouped_sorted_batch_is_known_unique_without_hashing():
    frame = pd.concat([bars_frame(50, "A"), bars_frame(50, "B")], ignore_index=True)
    assert not may_repeat_keys(frame, ["symbol", "ts"])
    # the same series split into two runs may repeat keys
    assert may_repeat_keys(pd.concat([frame, frame.iloc[:5]]), ["symbol", "ts"])


def test_prepare_reports_dropped_rows():
    frame = bars_frame(4)
    batch = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    batch.loc[1, "ts"] = pd.NaT
    prepared = prepare_batch("bars", batch, keep="first")
    assert (prepared.rejected_null_key, prepared.duplicate_keys, len(prepared.frame)) == (1, 1, 3)


def test_extra_columns_are_ignored_and_column_order_is_the_tables():
    frame = bars_frame(2)[["ts", "close", "symbol", "open", "high", "low", "volume"]]
    frame["note"] = "ignored"
    prepared = prepare_batch("bars", frame, keep="first")
    assert list(prepared.frame.columns) == [
        "symbol",
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]


def test_logical_types():
    assert [
        column_type(c) for c in ("ts", "published_at", "symbol", "title", "qty", "reduce_only")
    ] == ["ts", "ts", "sym", "str", "f64", "bool"]


def test_sub_microsecond_digits_are_dropped_so_keys_stay_comparable():
    frame = bars_frame(2)
    frame["ts"] = frame["ts"] + pd.Timedelta(nanoseconds=789)
    prepared = prepare_batch("bars", frame, keep="first").frame
    assert (prepared["ts"] == bars_frame(2)["ts"]).all()
