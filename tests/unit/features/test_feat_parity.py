"""Parity: the incremental engine reproduces the batch matrix, bar by bar."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from app.features.batch import build_features
from app.features.incremental import IncrementalFeatures
from app.features.side_inputs import SideInputs
from app.features.spec import FeatureSpec, default_spec
from app.types import AssetClass
from tests.builders import bars_frame
from tests.conftest import shared_ohlcv_files
from tests.unit.features.feat_builders import (
    all_flow_spec,
    assert_frames_close,
    read_ohlcv,
    replay,
    run_incremental,
    side_frames,
    to_bars,
)

CLASS_OF_FOLDER = {
    "crypto_binance_spot_5m": AssetClass.CRYPTO,
    "crypto_binance_spot_5m_2022": AssetClass.CRYPTO,
    "forex_mt5_5m": AssetClass.FOREX,
    "stocks_yahoo_5m": AssetClass.STOCKS,
}


@pytest.mark.parametrize("path", shared_ohlcv_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_incremental_reproduces_batch_on_real_ohlcv(shared_data, path) -> None:
    frame = read_ohlcv(path, n=5000)
    spec = default_spec(CLASS_OF_FOLDER[path.parent.name])
    batch = build_features(frame, asset_class=spec.asset_class, spec=spec)
    incremental = run_incremental(spec, frame)
    # the whole matrix, warm-up rows included (NaN where the batch has NaN)
    assert_frames_close(incremental, batch, rtol=1e-9)
    assert not batch.iloc[spec.warmup_bars :].isna().any().any()


def test_side_inputs_parity_on_simulator_like_data() -> None:
    frame = bars_frame(n=900, symbol="BTCUSDT", seed=3)
    spec = all_flow_spec()
    news, macro, flow = side_frames(frame["ts"], "BTCUSDT", seed=11)
    batch = build_features(
        frame, asset_class=spec.asset_class, news=news, macro=macro, flow=flow, spec=spec
    )
    incremental = run_incremental(spec, frame, replay(frame["ts"], news, macro, flow))
    assert_frames_close(incremental, batch, rtol=1e-9)
    # side columns are never NaN, and the data reaches every feature except the topic whose
    # column the news frame lacks (that one reads as 0 throughout)
    absent = f"topic_{spec.topics[2]}"
    for name in spec.side_names:
        assert batch[name].notna().all(), name
        assert batch[name].nunique() > 1 or name == absent, name
    assert (batch[absent] == 0.0).all()


def test_items_delivered_early_are_held_until_published() -> None:
    """Everything handed over at the first bar still lands on the bar it was published in."""
    frame = bars_frame(n=400, symbol="BTCUSDT", seed=5)
    spec = all_flow_spec()
    news, macro, flow = side_frames(frame["ts"], "BTCUSDT", seed=12)
    per_bar = replay(frame["ts"], news, macro, flow)
    everything = SideInputs(
        news=tuple(i for s in per_bar for i in s.news),
        macro=tuple(i for s in per_bar for i in s.macro),
        flow=tuple(i for s in per_bar for i in s.flow),
    )
    early = [everything] + [SideInputs()] * (len(frame) - 1)
    batch = build_features(
        frame, asset_class=spec.asset_class, news=news, macro=macro, flow=flow, spec=spec
    )
    assert_frames_close(run_incremental(spec, frame, early), batch, rtol=1e-9)


def test_checkpoint_resume_continues_exactly() -> None:
    frame = bars_frame(n=600, symbol="BTCUSDT", seed=8)
    spec = all_flow_spec()
    news, macro, flow = side_frames(frame["ts"], "BTCUSDT", seed=13)
    per_bar = replay(frame["ts"], news, macro, flow)
    # early delivery, so the checkpoint must carry pending items too
    per_bar[0] = SideInputs(
        news=per_bar[0].news + tuple(i for s in per_bar[300:] for i in s.news),
        macro=per_bar[0].macro,
        flow=per_bar[0].flow + tuple(i for s in per_bar[300:] for i in s.flow),
    )
    for k in range(300, len(per_bar)):
        per_bar[k] = SideInputs(macro=per_bar[k].macro)
    bars = to_bars(frame)

    straight = IncrementalFeatures(spec, "BTCUSDT", spec.asset_class)
    expected = [straight.update(b, s) for b, s in zip(bars, per_bar, strict=True)]

    first = IncrementalFeatures(spec, "BTCUSDT", spec.asset_class)
    rows = [first.update(b, s) for b, s in zip(bars[:250], per_bar[:250], strict=True)]
    state = json.loads(json.dumps(first.to_state(), allow_nan=False))  # strict JSON
    resumed = IncrementalFeatures.from_state(state)
    rows += [resumed.update(b, s) for b, s in zip(bars[250:], per_bar[250:], strict=True)]
    pd.testing.assert_frame_equal(pd.DataFrame(rows), pd.DataFrame(expected))
    assert resumed.raw == straight.raw


def test_incremental_rejects_out_of_order_and_foreign_bars() -> None:
    from app.errors import InputError

    frame = bars_frame(n=3, symbol="BTCUSDT")
    bars = to_bars(frame)
    engine = IncrementalFeatures(default_spec("crypto"), "BTCUSDT", "crypto")
    engine.update(bars[1])
    with pytest.raises(InputError, match="bar.ts="):
        engine.update(bars[0])
    with pytest.raises(InputError, match="bar.symbol="):
        engine.update(to_bars(bars_frame(n=3, symbol="ETHUSDT"))[2])
    with pytest.raises(InputError, match="asset_class="):
        IncrementalFeatures(default_spec("crypto"), "BTCUSDT", "stocks")


@pytest.mark.parametrize(
    "params",
    [
        {"macd_fast": 10, "macd_slow": 10},  # degenerate MACD: identically 0
        {"rsi_period": 5, "ema_periods": (3, 7), "z_window": 5, "bb_period": 5, "stoch_k": 5,
         "stoch_slow_k": 1, "stoch_d": 2, "atr_period": 3, "return_lags": (2,), "rvol_window": 4,
         "macd_fast": 3, "macd_slow": 6, "macd_signal": 2},
    ],
)  # fmt: skip
def test_parity_holds_for_other_parameters(params: dict) -> None:
    frame = bars_frame(n=300, symbol="BTCUSDT", seed=9)
    spec = FeatureSpec(asset_class="crypto", **params)
    batch = build_features(frame, asset_class="crypto", spec=spec)
    assert_frames_close(run_incremental(spec, frame), batch, rtol=1e-9)
    assert not batch.iloc[spec.warmup_bars :].isna().any().any()
    assert batch.iloc[: spec.warmup_bars].isna().any(axis=1).all()
