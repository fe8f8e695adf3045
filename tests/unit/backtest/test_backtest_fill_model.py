"""The shared fill model: next-open market fills, fees, intrabar stop/take-profit, causal ATR."""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from app.broker.fill_model import FillModel, intrabar_exit, wilder_atr
from app.config import CostSettings
from app.types import AssetClass
from tests.builders import bars_frame

NAN = math.nan


def test_bps_slippage_moves_the_price_against_the_trader():
    fm = FillModel(fee_rate=0.001, slippage_rate=0.0002)
    assert fm.market_fill(+1, 100.0, NAN) == (pytest.approx(100.02), 0.0002)
    assert fm.market_fill(-1, 100.0, NAN) == (pytest.approx(99.98), 0.0002)


def test_atr_slippage_is_a_fraction_of_atr_and_falls_back_during_warmup():
    fm = FillModel(fee_rate=0.0, slippage_rate=0.0001, slippage_atr_fraction=0.5)
    price, slip = fm.market_fill(+1, 200.0, 2.0)  # 0.5 * ATR 2.0 = 1.0 price unit
    assert price == pytest.approx(201.0)
    assert slip == pytest.approx(0.005)
    assert fm.market_fill(-1, 200.0, NAN)[0] == pytest.approx(200.0 * (1 - 0.0001))


def test_fee_is_bps_of_filled_notional():
    fm = FillModel(fee_rate=0.001)
    assert fm.fee(-250.0, 100.02) == pytest.approx(250 * 100.02 * 0.001)


def test_from_costs_reads_fee_per_asset_class_and_slippage_mode():
    costs = CostSettings()
    assert FillModel.from_costs(costs, AssetClass.CRYPTO).fee_rate == pytest.approx(0.001)
    assert FillModel.from_costs(costs, AssetClass.FOREX).fee_rate == pytest.approx(0.00005)
    assert FillModel.from_costs(costs, AssetClass.STOCKS).slippage_rate == pytest.approx(0.0002)
    atr_mode = FillModel.from_costs(
        CostSettings(slippage_mode="atr", slippage_atr=0.1), AssetClass.CRYPTO
    )
    assert atr_mode.slippage_atr_fraction == 0.1


def test_bad_rates_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="fee_rate"):
        FillModel(fee_rate=-0.1)
    with pytest.raises(ValueError, match="slippage_atr_fraction"):
        FillModel(fee_rate=0.0, slippage_atr_fraction=NAN)


@pytest.mark.parametrize(
    ("sign", "bar", "sl", "tp", "expected"),
    [
        # long: a bar that touches both levels -> the stop, at its level (stop-first)
        (+1, (100.0, 101.0, 98.0), 99.0, 100.5, (99.0, "stop_loss")),
        # long: opens below the stop (gap) -> filled at the open, not at the level
        (+1, (97.0, 97.5, 96.0), 99.0, 100.5, (97.0, "stop_loss")),
        # long: opens above the take-profit -> the (better) open
        (+1, (102.0, 102.5, 101.5), 99.0, 100.5, (102.0, "take_profit")),
        (+1, (100.0, 100.6, 99.5), 99.0, 100.5, (100.5, "take_profit")),
        (+1, (100.0, 100.4, 99.1), 99.0, 100.5, None),
        # short mirrored
        (-1, (100.0, 101.5, 99.0), 101.0, 99.5, (101.0, "stop_loss")),
        (-1, (102.0, 102.5, 101.8), 101.0, 99.5, (102.0, "stop_loss")),
        (-1, (99.0, 99.2, 98.5), 101.0, 99.5, (99.0, "take_profit")),
        (-1, (100.0, 100.5, 99.4), 101.0, 99.5, (99.5, "take_profit")),
        # missing levels (NaN) never trigger
        (+1, (100.0, 150.0, 50.0), NAN, NAN, None),
    ],
)
def test_intrabar_exit_rules(sign, bar, sl, tp, expected):
    open_, high, low = bar
    assert intrabar_exit(sign, open_, high, low, sl, tp) == expected


def test_wilder_atr_matches_talib_and_is_causal():
    f = bars_frame(400, seed=3)
    h, lo, c = (f[k].to_numpy() for k in ("high", "low", "close"))
    atr = wilder_atr(h, lo, c, 14)
    np.testing.assert_allclose(atr, talib.ATR(h, lo, c, 14), rtol=1e-12, equal_nan=True)
    assert np.isnan(atr[:14]).all() and np.isfinite(atr[14:]).all()
    prefix = wilder_atr(h[:200], lo[:200], c[:200], 14)
    np.testing.assert_array_equal(prefix, atr[:200])  # later bars never change earlier values
