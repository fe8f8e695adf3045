"""build_features: the pinned output shape and clear errors for bad bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.errors import InputError
from app.features.batch import build_features
from app.features.spec import default_spec
from tests.builders import bars_frame


def test_one_float_row_per_bar_in_input_order() -> None:
    frame = bars_frame(n=400).set_index(pd.RangeIndex(1000, 1400))
    out = build_features(frame, asset_class="stocks")
    spec = default_spec("stocks")
    assert list(out.columns) == ["ts", *spec.feature_names]
    assert out.index.equals(frame.index)
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"
    assert (out["ts"].to_numpy() == frame["ts"].to_numpy()).all()
    assert all(out[c].dtype == np.float64 for c in spec.feature_names)
    assert out.iloc[: spec.warmup_bars].isna().any(axis=1).all()
    assert not out.iloc[spec.warmup_bars :].isna().any().any()


def test_short_and_empty_inputs() -> None:
    out = build_features(bars_frame(n=5), asset_class="forex")
    assert len(out) == 5 and out["rsi_14"].isna().all() and out["ret_1"].notna().sum() == 4
    empty = build_features(bars_frame(n=3).iloc[:0], asset_class="crypto")
    assert len(empty) == 0 and list(empty.columns)[0] == "ts"


def test_known_values_on_a_hand_series() -> None:
    frame = bars_frame(n=30)
    frame["close"] = 100.0 * np.exp(0.01 * np.arange(30))  # steady +1% per bar
    frame["high"] = frame[["open", "close"]].max(axis=1) * 1.001
    frame["low"] = frame[["open", "close"]].min(axis=1) * 0.999
    out = build_features(frame, asset_class="crypto")
    assert out["ret_1"].iloc[5] == pytest.approx(0.01)
    assert out["ret_12"].iloc[20] == pytest.approx(0.12)
    assert out["rsi_14"].iloc[20] == 100.0  # no losses at all
    assert out["rvol_12"].iloc[20] == pytest.approx(0.01)
    assert out["ema_dist_9"].iloc[25] > 0  # price above its lagging average


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns="volume"), "missing columns"),
        (lambda f: f.assign(ts=f["ts"].dt.tz_localize(None)), "bars.ts"),
        (lambda f: f.iloc[[0, 2, 1, 3]], "bars.ts row 2"),
        (lambda f: pd.concat([f.iloc[:2], f.iloc[1:3]]), "bars.ts row 2"),
        (lambda f: f.assign(close=[1.0, np.nan, 1.0, 1.0]), "bars.close row 1"),
        (lambda f: f.assign(volume=[1.0, 1.0, -3.0, 1.0]), "bars.volume row 2"),
        (lambda f: f.assign(symbol=["A", "A", "B", "B"]), "one symbol per call"),
    ],
)
def test_bad_bars_raise_naming_field_and_row(mutate, message: str) -> None:
    with pytest.raises(InputError, match=message):
        build_features(mutate(bars_frame(n=4)), asset_class="crypto")


def test_spec_and_asset_class_must_agree() -> None:
    with pytest.raises(InputError, match="asset_class"):
        build_features(bars_frame(n=4), asset_class="crypto", spec=default_spec("stocks"))
