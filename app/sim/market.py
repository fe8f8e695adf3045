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
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from app.config import Asset
from app.labels import forward_log_return, label_threshold
from app.sim import calendar as cal
from app.sim.catalog import SymbolProfile, profile_for
from app.sim.config import SimConfig, stream_rng
from app.sim.drift import (
    FEAR_GREED_NAME,
    NS_PER_MIN,
    DriftParts,
    fear_greed_signal,
    flow_signal,
    news_signal,
)
from app.sim.manifest import SimCounts, SimManifest
from app.sim.oracle import oracle_probabilities
from app.sim.result import SimulationResult, oracle_dacc
from app.sim.side import generate_flow, generate_news
from app.types import AssetClass, FlowPoint, MacroPoint, NewsItem, from_ns, to_ns


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
        state = _regimes(
            stream_rng(cfg.seed, asset.symbol, "regime"), n, levels.size, cfg.regime_stay
        )
        sigma = prof.bar_sigma * levels[state] * activity[1:] * gap_mult[1:]
        t_scale = math.sqrt(cfg.t_df / (cfg.t_df - 2.0))
        eps = stream_rng(cfg.seed, asset.symbol, "eps").standard_t(cfg.t_df, size=n + 1) / t_scale
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
            a_news, a_flow = generate_news(cfg, asset), generate_flow(cfg, asset, ts_probe)
            news += a_news
            flow += a_flow
            paths.append(self._path(asset, a_news, a_flow))
        news.sort(key=lambda x: (x.published_at, x.id))
        flow.sort(key=lambda x: (x.published_at, x.symbol, x.kind))
        macro = self._walk_days(paths)
        bars = {p.asset.symbol: self._bars(p) for p in paths}
        oracle = {p.asset.symbol: self._oracle(p, bars[p.asset.symbol]) for p in paths}
        horizon = cfg.labels.horizon
        counts = SimCounts(
            bars={s: int(len(f)) for s, f in bars.items()},
            news=len(news),
            macro=len(macro),
            flow=len(flow),
        )
        dacc_by_symbol = {
            s: round(oracle_dacc(f["close"].to_numpy(), oracle[s], horizon), 4)
            for s, f in bars.items()
        }
        return SimulationResult(
            bars=bars,
            news=news,
            macro=macro,
            flow=flow,
            oracle=oracle,
            asset_classes={a.symbol: a.asset_class for a in cfg.assets},
            manifest=SimManifest.for_run(cfg, counts, dacc_by_symbol),
        )

    def _walk_days(self, paths: list[_Path]) -> list[MacroPoint]:
        """Publish Fear & Greed at each UTC midnight, then set drift and returns for the bars
        closing during that day. The value published at D 00:00 describes day D-1; the last
        step (at the end of the run) only serves the bar that closes exactly then."""
        cfg = self.config
        start_ns = to_ns(cfg.start)
        macro: list[MacroPoint] = []
        fg_rng = {
            k: stream_rng(cfg.seed, FEAR_GREED_NAME[k], "fear_greed") for k in FEAR_GREED_NAME
        }
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
        rng = stream_rng(self.config.seed, p.asset.symbol, "bars")
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
