"""What determines a simulation: ``SimConfig``, the planted effect sizes, seeded streams.

The same ``SimConfig`` gives byte-identical output: every random draw comes from
:func:`stream_rng`, one independent stream per (seed, symbol or market, purpose).
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np

from app.config import Asset, LabelSettings
from app.sim.catalog import DEFAULT_SYMBOLS, catalog_assets
from app.types import AssetClass, to_ns

T_DF = 5.0  # default Student-t degrees of freedom of the noise (the oracle's horizon-1 df)
STREAMS = ("regime", "eps", "news", "flow", "bars", "fear_greed")


def stream_rng(seed: int, key: str, stream: str) -> np.random.Generator:
    """An independent stream per (seed, symbol or market, purpose): adding a symbol never
    changes another symbol's draws."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), STREAMS.index(stream)])


@dataclass(frozen=True, slots=True)
class PlantedEffects:
    """Sizes of the planted drift, in units of the bar's sigma (so the signal-to-noise ratio
    is the same in every volatility regime)."""

    news_weight: float = 1.5  # z per unit of decayed true sentiment
    news_half_life_min: float = 20.0
    flow_weight: float = 0.30  # z per standardized flow unit (decayed sum)
    flow_half_life_min: float = 20.0
    fear_greed_weight: float = 0.30  # z per unit of (FG - 50) / 50, signed per class
    fear_greed_half_life_min: float = 720.0  # the market digests the daily print
    z_cap: float = 1.0

    def describe(self) -> dict[str, object]:
        return {
            **asdict(self),
            "formula": "mu[t] = sigma[t] * clip(w_news*N + w_flow*F + w_fg*G, -z_cap, z_cap)",
            "news": "N = sum over headlines published <= close(t) of "
            "true_sentiment * 0.5**(age/news_half_life)",
            "flow_crypto": "F = sum of -exchange_net_flow/flow_scale * 0.5**(age/flow_half_life)",
            "flow_stocks": "F = sum of (dark_pool_ratio - 0.45)/0.06 * 0.5**(age/flow_half_life)",
            "fear_greed": "G = sign * (last published value - 50) / 50 "
            "* 0.5**(age/fear_greed_half_life); sign -1 (contrarian) "
            "for crypto (fear_greed_crypto) and stocks (fear_greed_stocks), "
            "+1 for forex (fear_greed_stocks, risk-on)",
            "no_effect": "block_trade, whale_transfers, exchange_inflow/outflow and neutral "
            "headlines carry no planted drift",
        }


def _default_assets() -> tuple[Asset, ...]:
    return catalog_assets(DEFAULT_SYMBOLS)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that determines a simulation; the same config gives byte-identical output."""

    seed: int = 7
    days: int = 30
    start: datetime = datetime(2025, 1, 6, tzinfo=UTC)
    assets: tuple[Asset, ...] = field(default_factory=_default_assets)
    labels: LabelSettings = field(default_factory=LabelSettings)
    news_per_day: float = 16.0  # per asset, Poisson arrivals over the UTC day
    effects: PlantedEffects = field(default_factory=PlantedEffects)
    t_df: float = T_DF  # Student-t degrees of freedom of eps (> 4 for a finite kurtosis)
    regime_levels: tuple[float, ...] = (0.7, 1.0, 1.8)
    regime_stay: float = 0.995  # per-bar probability of staying in the current regime

    def __post_init__(self) -> None:
        to_ns(self.start)
        if self.days < 1:
            raise ValueError(f"SimConfig.days={self.days!r}: must be >= 1")
        if not self.assets:
            raise ValueError("SimConfig.assets=(): need at least one asset")
        symbols = [a.symbol for a in self.assets]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"SimConfig.assets: duplicate symbols in {symbols!r}")
        if not self.t_df > 4:
            raise ValueError(f"SimConfig.t_df={self.t_df!r}: must be > 4")
        if not 0 < self.regime_stay < 1:
            raise ValueError(f"SimConfig.regime_stay={self.regime_stay!r}: must be in (0, 1)")
        if self.news_per_day < 0:
            raise ValueError(f"SimConfig.news_per_day={self.news_per_day!r}: must be >= 0")

    @classmethod
    def for_symbols(cls, symbols: tuple[str, ...] | list[str], **kw: object) -> SimConfig:
        return cls(assets=catalog_assets(tuple(symbols)), **kw)  # type: ignore[arg-type]

    @property
    def symbols_by_class(self) -> dict[AssetClass, tuple[str, ...]]:
        out: dict[AssetClass, tuple[str, ...]] = {}
        for a in self.assets:
            out[a.asset_class] = (*out.get(a.asset_class, ()), a.symbol)
        return out

    @property
    def oracle_df(self) -> float:
        """Student-t df matching the kurtosis of a sum of ``horizon`` eps draws."""
        return 4.0 + (self.t_df - 4.0) * self.labels.horizon
