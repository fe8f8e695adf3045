"""Signals for the environment: parsed by the backtest's checker, probabilities aligned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.errors import InputError
from app.rl.jobs import default_train_end, parse_ts
from app.rl.series import build_series, signals_from_probs
from app.types import AssetClass
from tests.rl_builders import flat_bars


def _raw(rows: list[list[str]], probs: bool = True) -> pd.DataFrame:
    cols = ["ts", "ticker", "signal", "confidence"] + (
        ["p_up", "p_down", "p_flat"] if probs else []
    )
    return pd.DataFrame([r[: len(cols)] for r in rows], columns=cols)


ROWS = [
    ["2025-01-01T00:10:00Z", "BTCUSDT", "BUY", "0.8", "0.8", "0.15", "0.05"],
    ["2025-01-01T00:20:00Z", "BTCUSDT", "sell", "0.6", "0.3", "0.6", "0.1"],
    ["2025-01-01T00:20:00", "BTCUSDT", "BUY", "0.9", "0.9", "0.05", "0.05"],  # naive: rejected
    ["2025-01-01T00:25:00Z", "ETHUSDT", "BUY", "0.9", "0.9", "0.05", "0.05"],  # no prices
]


def test_probabilities_are_aligned_to_the_bars_and_bad_rows_rejected():
    bars = {"BTCUSDT": flat_bars(10)}
    series, batch = build_series(_raw(ROWS), bars, "BTCUSDT", AssetClass.CRYPTO)
    assert batch.summary()["rejected_by_reason"] == {"bad_timestamp": 1, "unknown_ticker": 1}
    assert list(np.flatnonzero(series.has_signal)) == [2, 4]
    np.testing.assert_allclose(series.probs[2], [0.8, 0.15, 0.05])
    np.testing.assert_allclose(series.probs[4], [0.3, 0.6, 0.1])
    assert series.signal[4] == "SELL" and np.isnan(series.probs[3]).all()
    frame = series.signals_frame()
    assert list(frame["signal"]) == ["BUY", "SELL"] and list(frame["confidence"]) == [0.8, 0.6]


def test_without_probability_columns_the_chosen_class_gets_the_confidence():
    series, _ = build_series(
        _raw(ROWS[:2], probs=False), {"BTCUSDT": flat_bars(10)}, "BTCUSDT", AssetClass.CRYPTO
    )
    np.testing.assert_allclose(series.probs[2], [0.8, 0.1, 0.1])
    np.testing.assert_allclose(series.probs[4], [0.2, 0.6, 0.2])


def test_probabilities_that_do_not_sum_to_one_name_the_row():
    rows = [["2025-01-01T00:10:00Z", "BTCUSDT", "BUY", "0.8", "0.8", "0.5", "0.05"]]
    with pytest.raises(InputError, match=r"ts=2025-01-01T00:10:00\+00:00.*sum to 1"):
        build_series(_raw(rows), {"BTCUSDT": flat_bars(10)}, "BTCUSDT", AssetClass.CRYPTO)


def test_signals_from_probs_takes_the_most_likely_class():
    probs = pd.DataFrame(
        {
            "ts": ["a", "b", "c"],
            "p_up": [0.5, 0.2, 0.3],
            "p_down": [0.3, 0.7, 0.3],
            "p_flat": [0.2, 0.1, 0.4],
        }
    )
    out = signals_from_probs(probs, "X")
    assert list(out["signal"]) == ["BUY", "SELL", "HOLD"]
    assert list(out["confidence"]) == [0.5, 0.7, 0.4]


def test_split_and_timestamps():
    first, last = pd.Timestamp("2025-01-06T00:00Z"), pd.Timestamp("2025-01-16T00:00Z")
    assert default_train_end(first, last) == pd.Timestamp("2025-01-13T00:00Z")
    with pytest.raises(InputError, match="too short"):
        default_train_end(first, first + pd.Timedelta(hours=2))
    assert parse_ts("2025-01-13", "--start") == pd.Timestamp("2025-01-13T00:00Z")
    assert parse_ts("2025-01-13T05:00+01:00", "--start") == pd.Timestamp("2025-01-13T04:00Z")
    with pytest.raises(InputError, match="UTC offset"):
        parse_ts("2025-01-13T05:00", "--start")
