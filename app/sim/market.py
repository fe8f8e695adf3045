"""A seeded multi-modal market whose best possible forecast is known (the oracle).

Generative model, per symbol, for the bar that opened at ``ts[t]`` and closes at ``c[t]``::

    r[t+1] = mu[t] + sigma[t] * eps[t+1]          eps ~ Student-t(df) scaled to unit variance
    mu[t]  = sigma[t] * clip(z[t], -z_cap, z_cap)
    z[t]   = w_news * N[t] + w_flow * F[t] + w_fg * G[t]

``N`` is the decayed sum of the true sentiment of the asset's headlines published at or
before ``c[t]``; ``F`` the decayed sum of standardized flow observations published by then
(crypto: minus the exchange net inflow; stocks: dark-pool share above its norm); ``G`` the
last *published* Fear & Greed value scaled to [-1, 1] (contrarian for crypto and stocks,
risk-on for forex). So ``mu[t]`` uses only what an observer could know at the close of bar
``t`` and the oracle is reachable in principle. ``sigma[t]`` follows a 3-state volatility
regime chain times the intraday profile of bar ``t+1`` (session opens carry the overnight
or weekend gap).

Fear & Greed is endogenous: the value for day D, published at 00:00 UTC of D+1, follows the
class's returns during day D, so generation walks forward one UTC day at a time.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from scipy import stats

from app.config import Asset, LabelSettings
from app.labels import dacc, forward_log_return, label_threshold
from app.sources import sim_calendar as cal
from app.sources.sim_templates import render_headline
from app.types import AssetClass, FlowPoint, MacroPoint, NewsItem, from_ns, to_ns

NS_PER_MIN = 60 * 1_000_000_000
HOUR_NS = 60 * NS_PER_MIN
FEAR_GREED_NAME = {AssetClass.CRYPTO: "fear_greed_crypto", AssetClass.STOCKS: "fear_greed_stocks"}
# Which Fear & Greed index moves each class, and with which sign (contrarian = -1).
FEAR_GREED_LINK: dict[AssetClass, tuple[AssetClass, float]] = {
    AssetClass.CRYPTO: (AssetClass.CRYPTO, -1.0),
    AssetClass.STOCKS: (AssetClass.STOCKS, -1.0),
    AssetClass.FOREX: (AssetClass.STOCKS, 1.0),  # risk-on lifts EUR/USD
}
# Most headlines land while the market is busiest (UTC hours), the rest any time of day.
NEWS_BUSY_HOURS_UTC = {
    AssetClass.CRYPTO: (12, 22),
    AssetClass.STOCKS: (13, 20),
    AssetClass.FOREX: (7, 17),
}
NEWS_BUSY_SHARE = 0.6
DARK_POOL_NORM, DARK_POOL_SCALE, DARK_POOL_NOISE = 0.45, 0.10, 0.048
STREAMS = ("regime", "eps", "news", "flow", "bars", "fear_greed")


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """Scale of one simulated symbol: start price, 5-minute vol, volume, flow units."""

    price: float
    bar_sigma: float  # std of a 5-minute log return in the normal regime, profile 1
    volume: float  # typical bar volume (base units, shares or ticks)
    decimals: int  # price tick as decimals
    flow_scale: float = 0.0  # std of the hourly exchange net flow (crypto, native units)
    gap_bars: float = 0.0  # variance of the session-open gap, in bars of normal variance


CLASS_DEFAULTS: dict[AssetClass, SymbolProfile] = {
    AssetClass.CRYPTO: SymbolProfile(100.0, 0.0020, 5_000.0, 4, flow_scale=50_000.0),
    AssetClass.STOCKS: SymbolProfile(100.0, 0.0012, 200_000.0, 2, gap_bars=16.0),
    AssetClass.FOREX: SymbolProfile(1.0, 0.00020, 300.0, 5, gap_bars=4.0),
}

CATALOG: dict[str, tuple[Asset, SymbolProfile]] = {
    "BTCUSDT": (
        Asset(symbol="BTCUSDT", asset_class=AssetClass.CRYPTO, name="Bitcoin", aliases=("BTC",)),
        SymbolProfile(60_000.0, 0.0012, 120.0, 2, flow_scale=400.0),
    ),
    "ETHUSDT": (
        Asset(
            symbol="ETHUSDT",
            asset_class=AssetClass.CRYPTO,
            name="Ethereum",
            aliases=("ETH", "Ether"),
        ),
        SymbolProfile(3_000.0, 0.0013, 1_500.0, 2, flow_scale=6_000.0),
    ),
    "SOLUSDT": (
        Asset(symbol="SOLUSDT", asset_class=AssetClass.CRYPTO, name="Solana", aliases=("SOL",)),
        SymbolProfile(150.0, 0.0022, 20_000.0, 3, flow_scale=80_000.0),
    ),
    "AAPL": (
        Asset(symbol="AAPL", asset_class=AssetClass.STOCKS, name="Apple", aliases=("Apple Inc.",)),
        SymbolProfile(200.0, 0.0008, 400_000.0, 2, gap_bars=16.0),
    ),
    "MSFT": (
        Asset(symbol="MSFT", asset_class=AssetClass.STOCKS, name="Microsoft"),
        SymbolProfile(420.0, 0.0008, 250_000.0, 2, gap_bars=16.0),
    ),
    "EURUSD": (
        Asset(
            symbol="EURUSD",
            asset_class=AssetClass.FOREX,
            name="Euro",
            aliases=("euro", "single currency"),
        ),
        SymbolProfile(1.08, 0.00017, 300.0, 5, gap_bars=4.0),
    ),
}

DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "AAPL", "EURUSD")


def catalog_assets(symbols: tuple[str, ...] | list[str]) -> tuple[Asset, ...]:
    """Assets of the built-in catalog by symbol; an unknown symbol is a ValueError naming it."""
    unknown = [s for s in symbols if s not in CATALOG]
    if unknown:
        raise ValueError(f"symbols={unknown!r}: not in the simulator catalog {sorted(CATALOG)}")
    return tuple(CATALOG[s][0] for s in symbols)


def profile_for(asset: Asset) -> SymbolProfile:
    entry = CATALOG.get(asset.symbol)
    return entry[1] if entry else CLASS_DEFAULTS[asset.asset_class]


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
    t_df: float = 5.0  # Student-t degrees of freedom of eps (> 4 for a finite kurtosis)
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


# --------------------------------------------------------------------------- the oracle


def oracle_probabilities(
    mu: np.ndarray, sigma: np.ndarray, theta: np.ndarray, df: float | None = 5.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``P(r > theta), P(r < -theta), P(|r| <= theta)`` for ``r = mu + sigma * e``.

    ``e`` is Student-t with ``df`` degrees of freedom scaled to unit variance (the simulator's
    eps; exact for horizon 1), or standard Normal when ``df`` is None. For other horizons pass
    the manifest's ``oracle.df`` (a kurtosis-matched approximation).
    """
    mu, sigma, theta = np.broadcast_arrays(
        np.asarray(mu, np.float64), np.asarray(sigma, np.float64), np.asarray(theta, np.float64)
    )
    if np.any(~(sigma > 0)):
        raise ValueError("sigma: must be > 0 everywhere")
    if np.any(~(theta >= 0)):
        raise ValueError("theta: must be >= 0 everywhere")
    if df is None or math.isinf(df):
        dist = stats.norm
        scale = 1.0
    else:
        if df <= 2:
            raise ValueError(f"df={df!r}: must be > 2 for a unit-variance Student-t")
        dist = stats.t(df)
        scale = math.sqrt(df / (df - 2.0))  # std of t(df); e = t / scale
    hi = (theta - mu) / sigma * scale
    lo = (-theta - mu) / sigma * scale
    p_up = dist.sf(hi)
    p_down = dist.cdf(lo)
    p_flat = np.clip(1.0 - p_up - p_down, 0.0, 1.0)
    return p_up, p_down, p_flat


# --------------------------------------------------------------------------- planted drift


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


# --------------------------------------------------------------------------- generation


def _ts_column(values: list[datetime]) -> pd.Series:
    ns = np.array([to_ns(v) for v in values], dtype=np.int64)
    return pd.Series(pd.to_datetime(ns, utc=True)).astype("datetime64[ns, UTC]")


@dataclass(frozen=True, slots=True)
class SimulationResult:
    bars: dict[str, pd.DataFrame]
    news: list[NewsItem]
    macro: list[MacroPoint]
    flow: list[FlowPoint]
    oracle: dict[str, pd.DataFrame]
    asset_classes: dict[str, AssetClass]
    manifest: dict[str, object]

    def macro_frame(self) -> pd.DataFrame:
        """Macro points in the store's frame shape: ``symbol(=name), ts, published_at, value``."""
        return pd.DataFrame(
            {
                "symbol": [m.name for m in self.macro],
                "ts": _ts_column([m.ts for m in self.macro]),
                "published_at": _ts_column([m.published_at for m in self.macro]),
                "value": np.array([m.value for m in self.macro], dtype=np.float64),
            }
        )

    def flow_frame(self) -> pd.DataFrame:
        """Flow points in the store's frame shape: ``symbol, ts, kind, published_at, value``."""
        return pd.DataFrame(
            {
                "symbol": [f.symbol for f in self.flow],
                "ts": _ts_column([f.ts for f in self.flow]),
                "kind": [f.kind for f in self.flow],
                "published_at": _ts_column([f.published_at for f in self.flow]),
                "value": np.array([f.value for f in self.flow], dtype=np.float64),
            }
        )

    def oracle_dacc(self, symbol: str) -> float:
        """DACC of the oracle's direction on the realized forward returns."""
        horizon = int(self.manifest["horizon"])  # type: ignore[call-overload]
        r = forward_log_return(self.bars[symbol]["close"].to_numpy(), horizon)
        o = self.oracle[symbol]
        return dacc(o["p_up"].to_numpy(), o["p_down"].to_numpy(), r)


@dataclass
class _Path:
    """Per-symbol arrays while the day loop runs."""

    asset: Asset
    profile: SymbolProfile
    ts: np.ndarray  # open times, n
    close_ns: np.ndarray
    state: np.ndarray  # regime index per bar
    sigma: np.ndarray  # std of r[t+1], known at close of t
    gap_next: np.ndarray  # bar t+1 opens after a gap
    eps: np.ndarray  # n + 1 unit-variance draws; eps[t+1] drives r[t+1]
    news_part: np.ndarray
    flow_part: np.ndarray
    fg_part: np.ndarray
    mu: np.ndarray
    r: np.ndarray  # log close-to-close return of bar t (r[0] vs the start price)


def _rng(seed: int, key: str, stream: str) -> np.random.Generator:
    """An independent stream per (seed, symbol or market, purpose): adding a symbol never
    changes another symbol's draws."""
    return np.random.default_rng([seed, zlib.crc32(key.encode()), STREAMS.index(stream)])


def _regimes(rng: np.random.Generator, n: int, k: int, stay: float) -> np.ndarray:
    """A sticky k-state Markov chain (geometric sojourns, uniform jumps), starting at 1."""
    state = np.empty(n, dtype=np.int64)
    pos, cur = 0, min(1, k - 1)
    while pos < n:
        length = int(rng.geometric(1.0 - stay))
        state[pos : pos + length] = cur
        pos += length
        others = [s for s in range(k) if s != cur]
        cur = others[int(rng.integers(len(others)))]
    return state


class SimulatedMarket:
    """Generates bars, news, Fear & Greed, flow and the oracle from one ``SimConfig``."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()

    # ---------------------------------------------------------------- side inputs
    def _news(self, asset: Asset) -> list[NewsItem]:
        cfg = self.config
        rng = _rng(cfg.seed, asset.symbol, "news")
        start_ns = to_ns(cfg.start)
        items: list[NewsItem] = []
        sources = {
            AssetClass.CRYPTO: ("sim-newswire", "sim-crypto-desk"),
            AssetClass.STOCKS: ("sim-newswire", "sim-markets"),
            AssetClass.FOREX: ("sim-newswire", "sim-fx-desk"),
        }[asset.asset_class]
        for day in range(cfg.days):
            count = int(rng.poisson(cfg.news_per_day))
            busy_from, busy_to = NEWS_BUSY_HOURS_UTC[asset.asset_class]
            busy = rng.random(count) < NEWS_BUSY_SHARE
            secs = np.where(
                busy,
                rng.integers(busy_from * 3600, busy_to * 3600, size=count),
                rng.integers(0, 86_400, size=count),
            )
            secs = np.sort(secs)
            for s in secs:
                h = render_headline(asset, rng)
                published = from_ns(start_ns + (day * 86_400 + int(s)) * 1_000_000_000)
                items.append(
                    NewsItem(
                        id=f"sim-{asset.symbol}-{len(items):06d}",
                        published_at=published,
                        source=sources[int(rng.integers(2))],
                        title=h.title,
                        body=h.body,
                        symbols=(asset.symbol,),
                        topic=h.topic,
                        true_sentiment=h.sentiment,
                    )
                )
        return items

    def _flow(self, asset: Asset, ts: np.ndarray) -> list[FlowPoint]:
        cfg = self.config
        rng = _rng(cfg.seed, asset.symbol, "flow")
        prof = profile_for(asset)
        out: list[FlowPoint] = []
        start_ns = to_ns(cfg.start)
        if asset.asset_class is AssetClass.CRYPTO:
            net_prev = 0.0
            for h in range(cfg.days * 24):
                t0 = start_ns + h * HOUR_NS
                net = 0.3 * net_prev + math.sqrt(1 - 0.09) * float(rng.normal()) * prof.flow_scale
                net_prev = net
                gross = prof.flow_scale * float(rng.uniform(3.0, 6.0))
                inflow = gross + max(net, 0.0)
                outflow = inflow - net
                whales = float(rng.poisson(4.0))
                stamp, pub = from_ns(t0), from_ns(t0 + HOUR_NS)  # hourly, public at hour end
                for kind, value in (
                    ("exchange_inflow", inflow),
                    ("exchange_outflow", outflow),
                    ("exchange_net_flow", net),
                    ("whale_transfers", whales),
                ):
                    out.append(FlowPoint(asset.symbol, kind, stamp, pub, round(value, 4)))
        elif asset.asset_class is AssetClass.STOCKS:
            half_hour = 30 * NS_PER_MIN
            windows = np.unique(ts - ts % half_hour)
            ratio = DARK_POOL_NORM
            for w0 in windows:
                ratio = (
                    DARK_POOL_NORM
                    + 0.6 * (ratio - DARK_POOL_NORM)
                    + 0.8 * float(rng.normal(0.0, DARK_POOL_NOISE))
                )
                ratio = float(np.clip(ratio, 0.05, 0.95))
                out.append(
                    FlowPoint(
                        asset.symbol,
                        "dark_pool_ratio",
                        from_ns(int(w0)),
                        from_ns(int(w0) + half_hour),
                        round(ratio, 4),
                    )
                )
            blocks = int(rng.poisson(5.0 * len(windows) / 13.0))
            for b in np.sort(rng.integers(0, ts.size, size=blocks)):
                at = int(ts[b]) + int(rng.integers(0, 300)) * 1_000_000_000
                size = float(round(rng.lognormal(math.log(80_000.0), 0.6)))
                out.append(
                    FlowPoint(
                        asset.symbol,
                        "block_trade",
                        from_ns(at),
                        from_ns(at + 10 * 1_000_000_000),  # reported 10 s after the print
                        size,
                    )
                )
        return out

    # ---------------------------------------------------------------- price paths
    def _path(self, asset: Asset, news: list[NewsItem], flow: list[FlowPoint]) -> _Path:
        cfg = self.config
        prof = profile_for(asset)
        ts_all = cal.bar_times(asset.asset_class, cfg.start, cfg.days + 5)
        end_ns = to_ns(cfg.start + timedelta(days=cfg.days))
        n = int(np.searchsorted(ts_all, end_ns, side="left"))
        if n == 0:
            raise ValueError(f"symbol={asset.symbol!r}: no trading bars in {cfg.days} day(s)")
        ts_ext = ts_all[: n + 1]  # the bar after the last one sets the last sigma
        activity = cal.activity_profile(asset.asset_class, ts_ext)
        gap = cal.gap_before(ts_ext)
        gap_mult = np.where(gap, math.sqrt(1.0 + prof.gap_bars), 1.0)
        levels = np.asarray(cfg.regime_levels)
        state = _regimes(_rng(cfg.seed, asset.symbol, "regime"), n, levels.size, cfg.regime_stay)
        sigma = prof.bar_sigma * levels[state] * activity[1:] * gap_mult[1:]
        t_scale = math.sqrt(cfg.t_df / (cfg.t_df - 2.0))
        eps = _rng(cfg.seed, asset.symbol, "eps").standard_t(cfg.t_df, size=n + 1) / t_scale
        ts = ts_ext[:n]
        close_ns = ts + cal.BAR_NS
        eff = cfg.effects
        r = np.zeros(n)
        r[0] = prof.bar_sigma * levels[state[0]] * activity[0] * eps[0]
        return _Path(
            asset=asset,
            profile=prof,
            ts=ts,
            close_ns=close_ns,
            state=state,
            sigma=sigma,
            gap_next=gap[1:],
            eps=eps,
            news_part=news_signal(asset.symbol, news, close_ns, eff.news_half_life_min),
            flow_part=flow_signal(asset, flow, close_ns, eff.flow_half_life_min),
            fg_part=np.zeros(n),
            mu=np.zeros(n),
            r=r,
        )

    def _fear_greed_step(
        self,
        klass: AssetClass,
        prev: float,
        rng: np.random.Generator,
        day_returns: list[tuple[float, float]],
    ) -> float:
        """Mean-reverting daily index pushed by the class's (vol-scaled) return of the day."""
        moves = [ret / scale for ret, scale in day_returns if scale > 0]
        momentum = float(np.mean(moves)) if moves else 0.0
        value = 50.0 + 0.8 * (prev - 50.0) + 18.0 * math.tanh(momentum) + rng.normal(0.0, 5.0)
        value = float(np.clip(value, 1.0, 99.0))
        return float(round(value)) if klass is AssetClass.CRYPTO else round(value, 1)

    def run(self) -> SimulationResult:
        cfg = self.config
        news: list[NewsItem] = []
        flow: list[FlowPoint] = []
        paths: list[_Path] = []
        for asset in cfg.assets:
            ts_probe = cal.bar_times(asset.asset_class, cfg.start, cfg.days)
            a_news, a_flow = self._news(asset), self._flow(asset, ts_probe)
            news += a_news
            flow += a_flow
            paths.append(self._path(asset, a_news, a_flow))
        news.sort(key=lambda x: (x.published_at, x.id))
        flow.sort(key=lambda x: (x.published_at, x.symbol, x.kind))
        macro = self._walk_days(paths)
        bars = {p.asset.symbol: self._bars(p) for p in paths}
        oracle = {p.asset.symbol: self._oracle(p, bars[p.asset.symbol]) for p in paths}
        manifest = self._manifest(bars, news, macro, flow)
        result = SimulationResult(
            bars=bars,
            news=news,
            macro=macro,
            flow=flow,
            oracle=oracle,
            asset_classes={a.symbol: a.asset_class for a in cfg.assets},
            manifest=manifest,
        )
        manifest["oracle_dacc"] = {s: round(result.oracle_dacc(s), 4) for s in bars}
        return result

    def _walk_days(self, paths: list[_Path]) -> list[MacroPoint]:
        """Publish Fear & Greed at each UTC midnight, then set drift and returns for the bars
        closing during that day. The value published at D 00:00 describes day D-1; the last
        step (at the end of the run) only serves the bar that closes exactly then."""
        cfg = self.config
        start_ns = to_ns(cfg.start)
        macro: list[MacroPoint] = []
        fg_rng = {k: _rng(cfg.seed, FEAR_GREED_NAME[k], "fear_greed") for k in FEAR_GREED_NAME}
        fg_value = {k: float(np.clip(rng.normal(50.0, 15.0), 5, 95)) for k, rng in fg_rng.items()}
        fg_value = {k: float(round(v)) for k, v in fg_value.items()}
        for day in range(cfg.days + 1):
            day0 = start_ns + day * cal.DAY_NS
            for klass, name in FEAR_GREED_NAME.items():
                if day > 0:
                    day_returns = []
                    for p in paths:
                        if p.asset.asset_class is not klass:
                            continue
                        sel = (p.close_ns > day0 - cal.DAY_NS) & (p.close_ns <= day0)
                        scale = p.profile.bar_sigma * math.sqrt(max(int(sel.sum()), 1))
                        day_returns.append((float(p.r[sel].sum()), scale if sel.any() else 0.0))
                    fg_value[klass] = self._fear_greed_step(
                        klass, fg_value[klass], fg_rng[klass], day_returns
                    )
                macro.append(
                    MacroPoint(
                        name=name,
                        ts=from_ns(day0 - cal.DAY_NS),
                        published_at=from_ns(day0),
                        value=fg_value[klass],
                    )
                )
            for p in paths:
                sel = np.flatnonzero((p.close_ns >= day0) & (p.close_ns < day0 + cal.DAY_NS))
                if sel.size == 0:
                    continue
                p.fg_part[sel] = fear_greed_signal(
                    p.asset.asset_class,
                    macro,
                    p.close_ns[sel],
                    cfg.effects.fear_greed_half_life_min,
                )
                parts = DriftParts(p.news_part[sel], p.flow_part[sel], p.fg_part[sel])
                p.mu[sel] = p.sigma[sel] * parts.z(cfg.effects)
                nxt = sel + 1
                inside = nxt < p.r.size
                p.r[nxt[inside]] = p.mu[sel[inside]] + p.sigma[sel[inside]] * p.eps[nxt[inside]]
        return macro

    def _bars(self, p: _Path) -> pd.DataFrame:
        rng = _rng(self.config.seed, p.asset.symbol, "bars")
        prof = p.profile
        n = p.ts.size
        close = prof.price * np.exp(np.cumsum(p.r))
        prev_close = np.concatenate([[prof.price], close[:-1]])
        gap_here = np.concatenate([[False], p.gap_next[:-1]])
        gap_share = prof.gap_bars / (1.0 + prof.gap_bars)
        open_ = prev_close * np.exp(np.where(gap_here, p.r * gap_share, 0.0))
        own_sigma = np.concatenate(
            [
                [prof.bar_sigma],
                p.sigma[:-1] / np.where(gap_here[1:], math.sqrt(1 + prof.gap_bars), 1.0),
            ]
        )
        wick_up = np.abs(rng.normal(size=n)) * 0.6 * own_sigma
        wick_dn = np.abs(rng.normal(size=n)) * 0.6 * own_sigma
        tick = 10.0**-prof.decimals
        open_r = np.maximum(np.round(open_, prof.decimals), tick)
        close_r = np.maximum(np.round(close, prof.decimals), tick)
        high = np.round(np.maximum(open_r, close_r) * np.exp(wick_up), prof.decimals)
        low = np.round(np.minimum(open_r, close_r) * np.exp(-wick_dn), prof.decimals)
        high = np.maximum(high, np.maximum(open_r, close_r))
        low = np.clip(low, tick, np.minimum(open_r, close_r))
        activity = cal.activity_profile(p.asset.asset_class, p.ts)
        levels = np.asarray(self.config.regime_levels)
        surprise = np.abs(p.r) / np.maximum(own_sigma, 1e-12)
        volume = (
            prof.volume
            * activity**1.5
            * levels[p.state]
            * np.exp(rng.normal(0.0, 0.35, size=n))
            * (0.7 + 0.3 * np.minimum(surprise, 6.0))
        )
        if p.asset.asset_class is AssetClass.CRYPTO:
            volume = np.maximum(np.round(volume, 4), 1e-4)
        else:
            volume = np.maximum(np.round(volume), 1.0)
        frame = pd.DataFrame(
            {
                "symbol": p.asset.symbol,
                "ts": pd.to_datetime(p.ts, utc=True).astype("datetime64[ns, UTC]"),
                "open": open_r,
                "high": high,
                "low": low,
                "close": close_r,
                "volume": volume,
            }
        )
        return frame

    def _oracle(self, p: _Path, bars: pd.DataFrame) -> pd.DataFrame:
        """mu, sigma of the forward T-bar log return given the state at the close of bar t.

        T = 1 is exact. For T > 1: future drift = today's drivers decayed forward (new
        arrivals have mean zero), Fear & Greed held, the current regime assumed to persist;
        sigma sums the variances, and the probabilities use a kurtosis-matched Student-t.
        """
        cfg = self.config
        horizon = cfg.labels.horizon
        if horizon == 1:
            mu, sigma = p.mu.copy(), p.sigma.copy()
        else:
            mu, sigma = self._horizon_moments(p, horizon)
        close = bars["close"].to_numpy()
        r = forward_log_return(close, horizon)
        lab = cfg.labels
        theta = label_threshold(r, horizon, lab.theta_bps, lab.theta_k, lab.sigma_window)
        p_up, p_down, p_flat = oracle_probabilities(mu, sigma, theta, df=cfg.oracle_df)
        return pd.DataFrame(
            {
                "ts": bars["ts"],
                "mu": mu,
                "sigma": sigma,
                "theta": theta,
                "p_up": p_up,
                "p_down": p_down,
                "p_flat": p_flat,
            }
        )

    def _horizon_moments(self, p: _Path, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        cfg, eff = self.config, self.config.effects
        n = p.ts.size
        levels = np.asarray(cfg.regime_levels)
        shape = p.sigma / (p.profile.bar_sigma * levels[p.state])  # activity x gap of bar t+1
        mu = np.zeros(n)
        var = np.zeros(n)
        for k in range(horizon):
            j = np.minimum(np.arange(n) + k, n - 1)
            age = (p.close_ns[j] - p.close_ns).astype(np.float64) / NS_PER_MIN
            parts = DriftParts(
                p.news_part * 0.5 ** (age / eff.news_half_life_min),
                p.flow_part * 0.5 ** (age / eff.flow_half_life_min),
                p.fg_part * 0.5 ** (age / eff.fear_greed_half_life_min),
            )
            sig_k = p.profile.bar_sigma * levels[p.state] * shape[j]
            mu += sig_k * parts.z(eff)
            var += sig_k**2
        return mu, np.sqrt(var)

    def _manifest(
        self,
        bars: dict[str, pd.DataFrame],
        news: list[NewsItem],
        macro: list[MacroPoint],
        flow: list[FlowPoint],
    ) -> dict[str, object]:
        cfg = self.config
        return {
            "generator": "app.sources.simulator",
            "seed": cfg.seed,
            "days": cfg.days,
            "start": cfg.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "symbols": {a.symbol: a.asset_class.value for a in cfg.assets},
            "assets": {a.symbol: {"name": a.name, "aliases": list(a.aliases)} for a in cfg.assets},
            "horizon": cfg.labels.horizon,
            "labels": cfg.labels.model_dump(),
            "news_per_day": cfg.news_per_day,
            "t_df": cfg.t_df,
            "regime_levels": list(cfg.regime_levels),
            "regime_stay": cfg.regime_stay,
            "oracle": {
                "df": cfg.oracle_df,
                "exact": cfg.labels.horizon == 1,
                "note": "p_* = oracle_probabilities(mu, sigma, theta, df=oracle.df)",
            },
            "planted_effects": cfg.effects.describe(),
            "counts": {
                "bars": {s: int(len(f)) for s, f in bars.items()},
                "news": len(news),
                "macro": len(macro),
                "flow": len(flow),
            },
        }
