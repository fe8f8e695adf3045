"""Raw indicator values equal TA-Lib's on every real OHLCV file (after TA-Lib's warm-up)."""

from __future__ import annotations

import numpy as np
import pytest
import talib

from app.features import technical as T
from tests.conftest import shared_ohlcv_files
from tests.unit.features.feat_builders import read_ohlcv

TOL = 1e-8


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


@pytest.mark.parametrize("path", shared_ohlcv_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_indicators_equal_talib(shared_data, path) -> None:
    frame = read_ohlcv(path)
    o, h, lo, c, v = (
        frame[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")
    )
    price = float(np.median(c))
    _close(T.rsi(c, 14), talib.RSI(c, 14), 100.0, "RSI")
    for ours, theirs, name in zip(
        T.macd(c, 12, 26, 9),
        talib.MACD(c, 12, 26, 9),
        ("MACD", "MACD signal", "MACD hist"),
        strict=True,
    ):
        _close(ours, theirs, price, name)
    slow_k, slow_d = T.stoch(h, lo, c, 14, 3, 3)
    talib_k, talib_d = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    _close(slow_k, talib_k, 100.0, "STOCH %K")
    _close(slow_d, talib_d, 100.0, "STOCH %D")
    _close(T.atr(h, lo, c, 14), talib.ATR(h, lo, c, 14), price, "ATR")
    for ours, theirs, name in zip(
        T.bollinger(c, 20, 2.0),
        talib.BBANDS(c, 20, 2.0, 2.0, 0),
        ("BB upper", "BB middle", "BB lower"),
        strict=True,
    ):
        _close(ours, theirs, price, name)
    for period in (9, 20, 50, 200):
        _close(T.ema(c, period), talib.EMA(c, period), price, f"EMA{period}")
    _close(T.obv(c, v), talib.OBV(c, v), float(np.sum(v)), "OBV")
    _close(T.true_range(h, lo, c), talib.TRANGE(h, lo, c), price, "TRANGE")
    del o


def test_bollinger_width_is_relative_band_spread() -> None:
    """bb_width = (upper - lower) / middle = 2k * population std / mean, checked by hand."""
    c = np.array([10.0, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29])
    upper, middle, lower = T.bollinger(c, 20, 2.0)
    assert middle[-1] == pytest.approx(19.5)
    assert (upper[-1] - lower[-1]) / middle[-1] == pytest.approx(4 * np.std(c) / 19.5, rel=1e-12)
    assert np.isnan(middle[:-1]).all()
