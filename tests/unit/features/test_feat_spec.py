"""FeatureSpec: names, warm-up, per-class defaults and a lossless JSON round trip."""

from __future__ import annotations

import json

import pytest

from app.errors import InputError
from app.features.spec import FeatureSpec, default_spec
from app.types import AssetClass

CONTRACT_TECHNICAL = {
    "ret_1",
    "ret_3",
    "ret_12",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "stoch_k",
    "stoch_d",
    "atr_14",
    "atr_pct",
    "bb_width_20",
    "ema_dist_9",
    "ema_dist_20",
    "ema_dist_50",
    "ema_dist_200",
    "obv_z",
    "vpt_z",
    "rvol_12",
    "volume_z",
}


@pytest.mark.parametrize("asset_class", list(AssetClass))
def test_default_spec_names(asset_class: AssetClass) -> None:
    spec = default_spec(asset_class)
    names = spec.feature_names
    assert len(names) == len(set(names)) >= 20
    assert CONTRACT_TECHNICAL <= set(names)
    assert {
        "sentiment_score",
        "sentiment_velocity",
        "news_intensity",
        "news_age",
        "fear_greed",
        "fear_greed_age",
        "implied_vol",
        "implied_vol_age",
    } <= set(names)
    assert {f"topic_{t}" for t in spec.topics} <= set(names)
    assert "obv" not in names and "vpt" not in names  # raw, non-stationary: state only
    sums = {"sentiment_sum_15m", "sentiment_sum_60m", "sentiment_sum_240m"}
    assert sums <= set(names)


def test_half_life_columns_follow_parameters() -> None:
    spec = FeatureSpec(
        asset_class="crypto",
        flow_features=("exchange_net_flow", "active_addresses_chg"),
        news_sum_half_lives_minutes=(7.5, 30),
        flow_sum_half_lives_minutes=(120,),
    )
    assert spec.news_sum_names == ("sentiment_sum_7.5m", "sentiment_sum_30m")
    assert spec.flow_names == (
        "exchange_net_flow",
        "active_addresses_chg",
        "exchange_net_flow_sum_120m",
        "flow_age",
    )
    none = FeatureSpec(asset_class="crypto", news_sum_half_lives_minutes=())
    assert not any(n.startswith("sentiment_sum_") for n in none.feature_names)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("news_sum_half_lives_minutes", (15.0, 0.0)),
        ("flow_sum_half_lives_minutes", (-5.0,)),
        ("news_sum_half_lives_minutes", (60.0, 60)),
    ],
)
def test_bad_half_lives_are_refused(field: str, value: tuple[float, ...]) -> None:
    with pytest.raises(InputError, match=field):
        FeatureSpec(asset_class="crypto", **{field: value})


def test_a_spec_stored_before_the_sum_columns_keeps_its_columns() -> None:
    stored = default_spec("crypto").to_dict()
    del stored["news_sum_half_lives_minutes"], stored["flow_sum_half_lives_minutes"]
    old = FeatureSpec.from_dict(stored)
    assert not any("_sum_" in n for n in old.feature_names)
    assert len(old.feature_names) == len(default_spec("crypto").feature_names) - 7


def test_flow_columns_per_asset_class() -> None:
    crypto, stocks, forex = (default_spec(c) for c in AssetClass)
    assert crypto.flow_names == (
        "exchange_net_flow",
        "active_addresses_chg",
        "whale_transfers",
        "trade_size_dev",
        "block_trade_flag",
        "exchange_net_flow_sum_15m",
        "exchange_net_flow_sum_60m",
        "whale_transfers_sum_15m",
        "whale_transfers_sum_60m",
        "flow_age",
    )
    assert stocks.flow_names[-1] == "flow_age" and "dark_pool_ratio" in stocks.flow_names
    assert "uoa_call_put_ratio" in stocks.flow_names and "block_trade_flag" in stocks.flow_names
    assert forex.flow_names == ()
    assert (crypto.fear_greed_series, stocks.fear_greed_series, forex.fear_greed_series) == (
        "fear_greed_crypto",
        "fear_greed_stocks",
        "",
    )


def test_a_crypto_spec_stored_before_the_print_features_keeps_its_columns() -> None:
    stored = default_spec("crypto").to_dict()
    stored["flow_features"] = ["exchange_net_flow", "active_addresses_chg", "whale_transfers"]
    old = FeatureSpec.from_dict(stored)
    assert "trade_size_dev" not in old.feature_names
    assert len(old.feature_names) == len(default_spec("crypto").feature_names) - 2


def test_warmup_is_the_longest_indicator() -> None:
    assert default_spec("crypto").warmup_bars == 199  # EMA(200) seeds at bar 199
    short = FeatureSpec(asset_class="crypto", ema_periods=(9, 20), z_window=30)
    assert short.warmup_bars == 33  # MACD signal: 25 + 8


def test_names_follow_parameters() -> None:
    spec = FeatureSpec(asset_class="stocks", rsi_period=7, ema_periods=(5,), return_lags=(2,))
    assert {"rsi_7", "ema_dist_5", "ret_2"} <= set(spec.feature_names)


def test_json_round_trip() -> None:
    spec = default_spec("stocks", topics=("earnings", "macro_policy"))
    again = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert again.feature_names == spec.feature_names


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rsi_period": 0}, "rsi_period"),
        ({"z_window": 1}, "z_window"),
        ({"macd_fast": 30}, "macd_fast"),
        ({"ema_periods": ()}, "ema_periods"),
        ({"news_half_life_minutes": 0}, "news_half_life_minutes"),
        ({"flow_features": ("moon_phase",)}, "flow_features"),
        ({"news_prior_weight": -1.0}, "news_prior_weight"),
    ],
)
def test_bad_parameters_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InputError, match=field):
        FeatureSpec(asset_class="crypto", **kwargs)


def test_from_dict_rejects_unknown_keys_and_bad_class() -> None:
    data = default_spec("crypto").to_dict()
    with pytest.raises(InputError, match="unknown keys"):
        FeatureSpec.from_dict({**data, "lookahead": True})
    with pytest.raises(InputError, match="asset_class"):
        default_spec("bonds")
