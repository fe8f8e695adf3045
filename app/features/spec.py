"""The feature definition: one frozen spec drives the batch and the incremental engine.

A model is trained on the matrix the batch engine builds from a spec and served on rows the
incremental engine builds from the *same* spec, so the registry stores the spec (``to_dict``)
next to the weights. Column names are derived from the parameters (``rsi_14``, ``ema_dist_200``),
so a spec with other periods yields other names instead of silently reusing old ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from app.errors import InputError
from app.types import NEWS_TOPICS, AssetClass

# Mirrors SentimentSettings.topics in app/config.py (features may not import config);
# the CLI passes the configured topics explicitly.
DEFAULT_TOPICS: tuple[str, ...] = NEWS_TOPICS

# Every flow feature the engines know, in column order, with the flow kinds it reads.
FLOW_FEATURE_KINDS: dict[str, tuple[str, ...]] = {
    "exchange_net_flow": ("exchange_net_flow",),
    "active_addresses_chg": ("active_addresses",),
    "whale_transfers": ("whale_transfers",),
    "dark_pool_ratio": ("dark_pool_ratio",),
    "dark_pool_ratio_dev": ("dark_pool_ratio",),
    "inst_volume_norm": ("inst_volume",),
    "trade_size_dev": ("trade_print",),
    "block_trade_flag": ("block_trade",),
    "uoa_call_put_ratio": ("uoa_call_premium", "uoa_put_premium"),
    "uoa_premium_z": ("uoa_call_premium", "uoa_put_premium"),
}

# Flow features that are the z-score of the last event of one kind (feature -> kind); these
# also get decayed sums of their per-event z-scores (``flow_sum_half_lives_minutes``).
ZSCORE_FLOW_FEATURES: dict[str, str] = {
    "exchange_net_flow": "exchange_net_flow",
    "whale_transfers": "whale_transfers",
    "inst_volume_norm": "inst_volume",
}


# Fields added after specs were first stored in the registry, with the value that reproduces
# the columns of a spec saved without them.
_ABSENT_BEFORE_SUMS: dict[str, Any] = {
    "news_sum_half_lives_minutes": (),
    "flow_sum_half_lives_minutes": (),
}


def _minutes_label(minutes: float) -> str:
    """Column suffix of a half-life: 15.0 -> ``15m``, 7.5 -> ``7.5m``."""
    return f"{float(minutes):g}m"


_FLOW_BY_CLASS: dict[AssetClass, tuple[str, ...]] = {
    # a stored spec lists its flow_features, so adding features here never changes its columns
    AssetClass.CRYPTO: (
        "exchange_net_flow",
        "active_addresses_chg",
        "whale_transfers",
        "trade_size_dev",
        "block_trade_flag",
    ),
    AssetClass.STOCKS: (
        "dark_pool_ratio",
        "dark_pool_ratio_dev",
        "inst_volume_norm",
        "trade_size_dev",
        "block_trade_flag",
        "uoa_call_put_ratio",
        "uoa_premium_z",
    ),
    AssetClass.FOREX: (),
}
_FEAR_GREED_BY_CLASS: dict[AssetClass, str] = {
    AssetClass.CRYPTO: "fear_greed_crypto",
    AssetClass.STOCKS: "fear_greed_stocks",
    AssetClass.FOREX: "",
}
_IMPLIED_VOL_BY_CLASS: dict[AssetClass, str] = {
    AssetClass.CRYPTO: "dvol",
    AssetClass.STOCKS: "vix",
    AssetClass.FOREX: "",
}


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Parameters of every feature; ``feature_names`` is the model's input column order."""

    asset_class: AssetClass
    # technical
    return_lags: tuple[int, ...] = (1, 3, 12)
    rsi_period: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    stoch_k: int = 14
    stoch_slow_k: int = 3
    stoch_d: int = 3
    atr_period: int = 14
    bb_period: int = 20
    bb_k: float = 2.0
    ema_periods: tuple[int, ...] = (9, 20, 50, 200)
    rvol_window: int = 12
    z_window: int = 24
    # news (scored by app.text.tagging)
    topics: tuple[str, ...] = DEFAULT_TOPICS
    news_half_life_minutes: float = 120.0
    news_prior_weight: float = 0.5
    sentiment_velocity_bars: int = 12
    news_age_cap_bars: float = 288.0
    # decayed SUMS of the score, one column per half-life: the net tone of recent news with its
    # volume (a burst of bad headlines weighs more than one); the mean above keeps only the tone
    news_sum_half_lives_minutes: tuple[float, ...] = (15.0, 60.0, 240.0)
    # macro: series names ("" = the asset class has none: neutral value + capped age)
    fear_greed_series: str = ""
    implied_vol_series: str = ""
    macro_age_cap_bars: float = 576.0
    # flow
    flow_features: tuple[str, ...] = ()
    flow_half_life_minutes: float = 60.0
    flow_long_half_life_minutes: float = 1440.0
    flow_event_window: int = 30
    flow_age_cap_bars: float = 576.0
    # decayed sums of the z-scored events of the z-score flow features, one column per
    # half-life: a print's pressure fades with its age, which the last value alone does not say
    flow_sum_half_lives_minutes: tuple[float, ...] = (15.0, 60.0)
    # a gap between bars longer than this starts a new trading session; a daily report
    # (``dark_pool_ratio``) is in force from its publication through the end of the next session
    session_gap_minutes: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "asset_class", AssetClass(self.asset_class))
        for name in (
            "return_lags", "ema_periods", "topics", "flow_features",
            "news_sum_half_lives_minutes", "flow_sum_half_lives_minutes",
        ):  # fmt: skip
            object.__setattr__(self, name, tuple(getattr(self, name)))
        positive_ints = (
            "macd_signal", "stoch_k", "stoch_slow_k",
            "stoch_d", "atr_period", "rvol_window", "sentiment_velocity_bars",
            "flow_event_window",
        )  # fmt: skip
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"FeatureSpec.{name}={value!r}: must be an integer >= 1")
        for name in ("bb_period", "z_window", "rsi_period", "macd_fast", "macd_slow"):  # TA-Lib
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise InputError(f"FeatureSpec.{name}={value!r}: must be an integer >= 2")
        if self.macd_fast > self.macd_slow:
            raise InputError(
                f"FeatureSpec.macd_fast={self.macd_fast!r}: must not exceed macd_slow"
                f"={self.macd_slow}"
            )
        for name in ("return_lags", "ema_periods"):
            values = getattr(self, name)
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise InputError(f"FeatureSpec.{name}={values!r}: need integers >= 1")
        for name in (
            "news_half_life_minutes", "flow_half_life_minutes", "flow_long_half_life_minutes",
            "news_age_cap_bars", "macro_age_cap_bars", "flow_age_cap_bars", "bb_k",
            "session_gap_minutes",
        ):  # fmt: skip
            if not getattr(self, name) > 0:
                raise InputError(f"FeatureSpec.{name}={getattr(self, name)!r}: must be > 0")
        if self.news_prior_weight < 0:
            raise InputError(
                f"FeatureSpec.news_prior_weight={self.news_prior_weight!r}: must be >= 0"
            )
        for name in ("news_sum_half_lives_minutes", "flow_sum_half_lives_minutes"):
            values = getattr(self, name)
            if any(not isinstance(v, int | float) or not v > 0 for v in values):
                raise InputError(f"FeatureSpec.{name}={values!r}: need half-lives > 0")
            if len({_minutes_label(v) for v in values}) != len(values):
                raise InputError(f"FeatureSpec.{name}={values!r}: duplicate half-lives")
        unknown = [f for f in self.flow_features if f not in FLOW_FEATURE_KINDS]
        if unknown:
            raise InputError(
                f"FeatureSpec.flow_features={unknown!r}: unknown; known {list(FLOW_FEATURE_KINDS)}"
            )

    # ------------------------------------------------------------------ names
    @property
    def technical_names(self) -> tuple[str, ...]:
        names = [f"ret_{lag}" for lag in self.return_lags]
        names += [f"rsi_{self.rsi_period}", "macd", "macd_signal", "macd_hist", "stoch_k"]
        names += ["stoch_d", f"atr_{self.atr_period}", "atr_pct", f"bb_width_{self.bb_period}"]
        names += [f"ema_dist_{p}" for p in self.ema_periods]
        names += ["obv_z", "vpt_z", f"rvol_{self.rvol_window}", "volume_z"]
        return tuple(names)

    @property
    def news_names(self) -> tuple[str, ...]:
        topics = tuple(f"topic_{t}" for t in self.topics)
        return (
            "sentiment_score", "sentiment_velocity", "news_intensity", *self.news_sum_names,
            *topics, "news_age",
        )  # fmt: skip

    @property
    def news_sum_names(self) -> tuple[str, ...]:
        return tuple(f"sentiment_sum_{_minutes_label(h)}" for h in self.news_sum_half_lives_minutes)

    @property
    def macro_names(self) -> tuple[str, ...]:
        return ("fear_greed", "fear_greed_age", "implied_vol", "implied_vol_age")

    @property
    def flow_names(self) -> tuple[str, ...]:
        if not self.flow_features:
            return ()
        return (*self.flow_features, *self.flow_sum_names, "flow_age")

    @property
    def flow_sum_features(self) -> tuple[str, ...]:
        """The z-score flow features that also get decayed-sum columns."""
        return tuple(f for f in self.flow_features if f in ZSCORE_FLOW_FEATURES)

    @property
    def flow_sum_names(self) -> tuple[str, ...]:
        return tuple(
            f"{name}_sum_{_minutes_label(h)}"
            for name in self.flow_sum_features
            for h in self.flow_sum_half_lives_minutes
        )

    @property
    def side_names(self) -> tuple[str, ...]:
        return self.news_names + self.macro_names + self.flow_names

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.technical_names + self.side_names

    @property
    def flow_kinds(self) -> frozenset[str]:
        """Flow kinds this spec reads (everything else is ignored)."""
        return frozenset(k for f in self.flow_features for k in FLOW_FEATURE_KINDS[f])

    @property
    def warmup_bars(self) -> int:
        """Rows before this index may hold NaN in technical columns; none from here on."""
        first_valid = [
            max(self.return_lags),
            self.rsi_period,
            self.macd_slow - 1 + self.macd_signal - 1,
            self.stoch_k - 1 + self.stoch_slow_k - 1 + self.stoch_d - 1,
            self.atr_period,
            self.bb_period - 1,
            max(self.ema_periods) - 1,
            self.z_window,  # OBV / VPT changes start at bar 1
            self.rvol_window,
        ]
        return max(first_valid)

    # ------------------------------------------------------------------ (de)serialization
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["asset_class"] = self.asset_class.value
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"FeatureSpec: unknown keys {unknown}")
        if "asset_class" not in data:
            raise InputError("FeatureSpec.asset_class: missing")
        # a spec stored before the decayed-sum columns existed had none: keep its columns
        data = {**_ABSENT_BEFORE_SUMS, **data}
        return cls(**data)


def default_spec(
    asset_class: AssetClass | str, topics: tuple[str, ...] = DEFAULT_TOPICS
) -> FeatureSpec:
    """The spec used unless a model was trained with another one (per asset class)."""
    try:
        cls = AssetClass(asset_class)
    except ValueError as exc:
        raise InputError(f"asset_class={asset_class!r}: expected crypto|stocks|forex") from exc
    return FeatureSpec(
        asset_class=cls,
        topics=tuple(topics),
        fear_greed_series=_FEAR_GREED_BY_CLASS[cls],
        implied_vol_series=_IMPLIED_VOL_BY_CLASS[cls],
        flow_features=_FLOW_BY_CLASS[cls],
    )
