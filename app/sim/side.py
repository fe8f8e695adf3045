"""The simulated side inputs that feed the planted drift: headlines and flow.

Fear & Greed is endogenous (it follows the day's returns), so it is made in the market's
day loop (app/sim/market.py), not here.
"""

from __future__ import annotations

import math

import numpy as np

from app.config import Asset
from app.sim.catalog import profile_for
from app.sim.config import SimConfig, stream_rng
from app.sim.drift import DARK_POOL_NOISE, DARK_POOL_NORM, NS_PER_MIN
from app.sim.headlines import render_headline
from app.types import AssetClass, FlowPoint, NewsItem, from_ns, to_ns

HOUR_NS = 60 * NS_PER_MIN
# Most headlines land while the market is busiest (UTC hours), the rest any time of day.
NEWS_BUSY_HOURS_UTC = {
    AssetClass.CRYPTO: (12, 22),
    AssetClass.STOCKS: (13, 20),
    AssetClass.FOREX: (7, 17),
}
NEWS_BUSY_SHARE = 0.6


def generate_news(cfg: SimConfig, asset: Asset) -> list[NewsItem]:
    """Poisson headline arrivals per UTC day, mostly in busy hours, each from a template
    with a known sentiment and topic."""
    rng = stream_rng(cfg.seed, asset.symbol, "news")
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


def generate_flow(cfg: SimConfig, asset: Asset, ts: np.ndarray) -> list[FlowPoint]:
    """Hourly exchange flows (crypto); dark-pool share per half hour and block trades
    (stocks, on the bar times ``ts``); nothing for forex."""
    rng = stream_rng(cfg.seed, asset.symbol, "flow")
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
