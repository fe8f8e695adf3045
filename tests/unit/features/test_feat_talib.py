"""Raw indicator values equal TA-Lib's on every real OHLCV file (after TA-Lib's warm-up).

The batch engine delegates EMA, RSI, ATR and most of MACD to TA-Lib, so those are checked on
the incremental engine, which computes them itself; the batch side is checked for the
indicators it computes itself (STOCH, Bollinger, OBV, true range).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import talib

from app.features import technical as T
from app.features.incremental import IncrementalFeatures
from app.features.spec import default_spec
from app.types import AssetClass
from tests.conftest import shared_ohlcv_files
from tests.unit.features.feat_builders import read_ohlcv, to_bars

TOL = 1e-8
EMA_PERIODS = (9, 20, 50, 200)


def _close(ours: np.ndarray, theirs: np.ndarray, scale: float, name: str) -> None:
    """|ours - theirs| <= 1e-8 * max(|theirs|, scale); both defined on the same bars.

    ``scale`` is the indicator's natural size (100 for oscillators, the price level for
    price-valued ones), so a MACD crossing zero is not judged relative to ~0.
    """
    defined = ~np.isnan(theirs)
    # same first bar, except MACD and %K, which TA-Lib withholds until their signal/%D exist
    assert not np.isnan(ours[defined]).any(), f"{name}: NaN where TA-Lib has a value"
    if name not in ("MACD", "STOCH %K"):
        assert np.array_equal(defined, ~np.isnan(ours)), f"{name}: warm-up differs from TA-Lib"
    gap = np.abs(ours[defined] - theirs[defined])
    limit = TOL * np.maximum(np.abs(theirs[defined]), scale)
    assert (gap <= limit).all(), f"{name}: max gap {gap.max():.3e} at {np.argmax(gap - limit)}"


def _incremental_raw(frame) -> dict[str, np.ndarray]:
    """The incremental engine's RSI, MACD, ATR, EMAs and OBV at every bar of ``frame``.

    These are the project's own arithmetic (the batch engine hands them to TA-Lib itself, so
    comparing the batch side with TA-Lib would compare TA-Lib with itself).
    """
    spec = default_spec(AssetClass.CRYPTO)
    engine = IncrementalFeatures(spec, str(frame["symbol"].iloc[0]), spec.asset_class)
    names = [f"rsi_{spec.rsi_period}", "macd", "macd_signal", "macd_hist", f"atr_{spec.atr_period}"]
    raw_names = [f"ema_{p}" for p in spec.ema_periods] + ["obv"]
    out: dict[str, list[float]] = {k: [] for k in names + raw_names}
    for bar in to_bars(frame):
        row = engine.update(bar)
        for k in names:
            out[k].append(row[k])
        raw = engine.raw
        for p in spec.ema_periods:  # the running EMA, NaN until its seed bar
            out[f"ema_{p}"].append(raw[f"ema_{p}"])
        out["obv"].append(raw["obv"])
    assert (spec.rsi_period, spec.atr_period) == (14, 14)
    assert (spec.macd_fast, spec.macd_slow, spec.macd_signal) == (12, 26, 9)
    assert spec.ema_periods == EMA_PERIODS
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


@pytest.mark.parametrize("path", shared_ohlcv_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_incremental_indicators_equal_talib(shared_data, path) -> None:
    """RSI, MACD, ATR, EMA and OBV of the incremental engine, bar by bar, against TA-Lib."""
    frame = read_ohlcv(path)
    h, lo, c, v = (frame[k].to_numpy(np.float64) for k in ("high", "low", "close", "volume"))
    price = float(np.median(c))
    ours = _incremental_raw(frame)
    _close(ours["rsi_14"], talib.RSI(c, 14), 100.0, "RSI")
    for name, theirs in zip(
        ("macd", "macd_signal", "macd_hist"), talib.MACD(c, 12, 26, 9), strict=True
    ):
        _close(ours[name], theirs, price, "MACD" if name == "macd" else name)
    _close(ours["atr_14"], talib.ATR(h, lo, c, 14), price, "ATR")
    for period in EMA_PERIODS:
        _close(ours[f"ema_{period}"], talib.EMA(c, period), price, f"EMA{period}")
    _close(ours["obv"], talib.OBV(c, v), float(np.sum(v)), "OBV")


@pytest.mark.parametrize("path", shared_ohlcv_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_batch_indicators_equal_talib(shared_data, path) -> None:
    """The batch indicators computed here (not delegated to TA-Lib) against TA-Lib.

    Only MACD's first ``signal - 1`` line values are the project's own on the batch side
    (TA-Lib withholds them); they are checked against the incremental engine's in
    ``test_feat_parity``.
    """
    frame = read_ohlcv(path)
    h, lo, c, v = (frame[k].to_numpy(np.float64) for k in ("high", "low", "close", "volume"))
    price = float(np.median(c))
    slow_k, slow_d = T.stoch(h, lo, c, 14, 3, 3)
    talib_k, talib_d = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    _close(slow_k, talib_k, 100.0, "STOCH %K")
    _close(slow_d, talib_d, 100.0, "STOCH %D")
    for ours, theirs, name in zip(
        T.bollinger(c, 20, 2.0),
        talib.BBANDS(c, 20, 2.0, 2.0, 0),
        ("BB upper", "BB middle", "BB lower"),
        strict=True,
    ):
        _close(ours, theirs, price, name)
    _close(T.obv(c, v), talib.OBV(c, v), float(np.sum(v)), "OBV")
    _close(T.true_range(h, lo, c), talib.TRANGE(h, lo, c), price, "TRANGE")


def test_incremental_rsi_is_wilder_by_hand() -> None:
    """A hand-checked RSI: the comparison above fails when the engine's arithmetic is wrong."""
    closes = [10.0, 11, 10, 12, 11, 13]  # gains 1,0,2,0,2 losses 0,1,0,1,0
    frame = pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "ts": pd.date_range("2024-01-01", periods=len(closes), freq="5min", tz="UTC"),
            "open": closes,
            "high": [x + 0.5 for x in closes],
            "low": [x - 0.5 for x in closes],
            "close": closes,
            "volume": 1.0,
        }
    )
    spec = replace(default_spec(AssetClass.CRYPTO), rsi_period=3)
    engine = IncrementalFeatures(spec, "BTCUSDT", spec.asset_class)
    rsi = [engine.update(b)["rsi_3"] for b in to_bars(frame)]
    gain, loss = 3.0 / 3, 1.0 / 3  # seeded on bars 1..3
    assert np.isnan(rsi[:3]).all()
    assert rsi[3] == pytest.approx(100 * gain / (gain + loss))
    gain, loss = (gain * 2 + 0) / 3, (loss * 2 + 1) / 3
    assert rsi[4] == pytest.approx(100 * gain / (gain + loss))
    gain, loss = (gain * 2 + 2) / 3, (loss * 2 + 0) / 3
    assert rsi[5] == pytest.approx(100 * gain / (gain + loss))
    assert rsi[3:] == pytest.approx(list(talib.RSI(np.array(closes), 3)[3:]))


def test_bollinger_width_is_relative_band_spread() -> None:
    """bb_width = (upper - lower) / middle = 2k * population std / mean, checked by hand."""
    c = np.array([10.0, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29])
    upper, middle, lower = T.bollinger(c, 20, 2.0)
    assert middle[-1] == pytest.approx(19.5)
    assert (upper[-1] - lower[-1]) / middle[-1] == pytest.approx(4 * np.std(c) / 19.5, rel=1e-12)
    assert np.isnan(middle[:-1]).all()
