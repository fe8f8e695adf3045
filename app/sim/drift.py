"""The planted drift: what an observer could know at a bar's close, turned into ``z``.

``z[t] = w_news * N[t] + w_flow * F[t] + w_fg * G[t]`` (clipped), with ``N`` the decayed true
sentiment of the asset's published headlines, ``F`` the decayed standardized flow and ``G``
the last published Fear & Greed value; ``mu[t] = sigma[t] * z[t]``. Each driver depends only
on inputs published at or before the close, so recomputing them from the side inputs alone
gives the same numbers (the no-leak check in the tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.config import Asset
from app.sim.catalog import profile_for
from app.sim.config import PlantedEffects
from app.types import AssetClass, FlowPoint, MacroPoint, NewsItem, to_ns

NS_PER_MIN = 60 * 1_000_000_000
FEAR_GREED_NAME = {AssetClass.CRYPTO: "fear_greed_crypto", AssetClass.STOCKS: "fear_greed_stocks"}
# Which Fear & Greed index moves each class, and with which sign (contrarian = -1).
FEAR_GREED_LINK: dict[AssetClass, tuple[AssetClass, float]] = {
    AssetClass.CRYPTO: (AssetClass.CRYPTO, -1.0),
    AssetClass.STOCKS: (AssetClass.STOCKS, -1.0),
    AssetClass.FOREX: (AssetClass.STOCKS, 1.0),  # risk-on lifts EUR/USD
}
DARK_POOL_NORM, DARK_POOL_SCALE, DARK_POOL_NOISE = 0.45, 0.10, 0.048


def decayed_sum(
    event_ns: np.ndarray, weights: np.ndarray, at_ns: np.ndarray, half_life_ns: float
) -> np.ndarray:
    """``S[t] = sum over events with event_ns <= at_ns[t] of w * 0.5**((at_ns[t]-event)/hl)``.

    ``at_ns`` must be ascending. ``S[t]`` depends only on events up to ``at_ns[t]``, bit for
    bit (each event enters at the first ``t`` that can see it, then decays).
    """
    n = at_ns.size
    out = np.zeros(n)
    if n == 0 or event_ns.size == 0:
        return out
    if np.any(np.diff(at_ns) < 0):
        raise ValueError("at_ns: must be ascending")
    lam = math.log(2.0) / half_life_ns
    first = np.searchsorted(at_ns, event_ns, side="left")  # first t with at >= event
    seen = first < n
    first, ev, w = first[seen], event_ns[seen], np.asarray(weights, np.float64)[seen]
    contrib = w * np.exp(-lam * (at_ns[first] - ev).astype(np.float64))
    add = np.bincount(first, weights=contrib, minlength=n)
    decay = np.exp(-lam * np.diff(at_ns).astype(np.float64))
    acc = 0.0
    for t in range(n):
        acc = (acc * decay[t - 1] if t else 0.0) + add[t]
        out[t] = acc
    return out


@dataclass(frozen=True, slots=True)
class DriftParts:
    """The three observable drivers of the planted drift at each bar close."""

    news: np.ndarray
    flow: np.ndarray
    fear_greed: np.ndarray

    def z(self, effects: PlantedEffects) -> np.ndarray:
        z = (
            effects.news_weight * self.news
            + effects.flow_weight * self.flow
            + effects.fear_greed_weight * self.fear_greed
        )
        return np.clip(z, -effects.z_cap, effects.z_cap)


def news_signal(
    symbol: str, news: list[NewsItem], close_ns: np.ndarray, hl_min: float
) -> np.ndarray:
    mine = [n for n in news if symbol in n.symbols and n.true_sentiment is not None]
    ev = np.array([to_ns(n.published_at) for n in mine], dtype=np.int64)
    w = np.array([n.true_sentiment for n in mine], dtype=np.float64)
    return decayed_sum(ev, w, close_ns, hl_min * NS_PER_MIN)


def flow_signal(
    asset: Asset, flow: list[FlowPoint], close_ns: np.ndarray, hl_min: float
) -> np.ndarray:
    """Standardized signed flow pressure; fixed scales from the profile, never fitted."""
    if asset.asset_class is AssetClass.CRYPTO:
        kind, scale = "exchange_net_flow", profile_for(asset).flow_scale

        def impact(v: np.ndarray) -> np.ndarray:
            return -v / scale  # coins moving onto exchanges = selling pressure

    elif asset.asset_class is AssetClass.STOCKS:
        kind = "dark_pool_ratio"

        def impact(v: np.ndarray) -> np.ndarray:
            return (v - DARK_POOL_NORM) / DARK_POOL_SCALE  # off-exchange accumulation

    else:
        return np.zeros(close_ns.size)
    mine = [f for f in flow if f.symbol == asset.symbol and f.kind == kind]
    ev = np.array([to_ns(f.published_at) for f in mine], dtype=np.int64)
    v = np.array([f.value for f in mine], dtype=np.float64)
    return decayed_sum(ev, impact(v), close_ns, hl_min * NS_PER_MIN)


def fear_greed_signal(
    asset_class: AssetClass, macro: list[MacroPoint], close_ns: np.ndarray, hl_min: float
) -> np.ndarray:
    """The last published index, scaled to [-1, 1], fading as the print ages."""
    source, sign = FEAR_GREED_LINK[asset_class]
    name = FEAR_GREED_NAME[source]
    mine = [m for m in macro if m.name == name]
    pub = np.array([to_ns(m.published_at) for m in mine], dtype=np.int64)
    val = np.array([m.value for m in mine], dtype=np.float64)
    order = np.argsort(pub, kind="stable")
    pub, val = pub[order], val[order]
    idx = np.searchsorted(pub, close_ns, side="right") - 1  # latest print published <= close
    out = np.zeros(close_ns.size)
    ok = idx >= 0
    age_min = (close_ns[ok] - pub[idx[ok]]).astype(np.float64) / NS_PER_MIN
    out[ok] = sign * (val[idx[ok]] - 50.0) / 50.0 * 0.5 ** (age_min / hl_min)
    return out


def drift_parts(
    asset: Asset,
    close_ns: np.ndarray,
    news: list[NewsItem],
    flow: list[FlowPoint],
    macro: list[MacroPoint],
    effects: PlantedEffects,
) -> DriftParts:
    """Recompute the planted drivers from side inputs alone (used by tests to prove that
    nothing published after a bar's close moves its drift)."""
    return DriftParts(
        news=news_signal(asset.symbol, news, close_ns, effects.news_half_life_min),
        flow=flow_signal(asset, flow, close_ns, effects.flow_half_life_min),
        fear_greed=fear_greed_signal(
            asset.asset_class, macro, close_ns, effects.fear_greed_half_life_min
        ),
    )
