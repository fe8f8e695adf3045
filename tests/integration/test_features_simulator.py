"""Features on the simulator's market: parity with side inputs, and the planted effects show.

The simulator plants drift from decayed headline sentiment, exchange net flow (crypto),
dark-pool share (stocks) and the last published Fear & Greed value (contrarian). Scoring the
headlines with their true sentiment (a perfect stand-in for the sentiment model) isolates the
feature engines: if alignment were wrong (late, early or misassigned), these links would fade.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.features.batch import build_features
from app.features.spec import default_spec
from app.sim.config import SimConfig
from app.sim.market import SimulatedMarket
from tests.unit.features.feat_builders import assert_frames_close, replay, run_incremental


@pytest.fixture(scope="module")
def market():
    return SimulatedMarket(SimConfig.for_symbols(["BTCUSDT", "AAPL"], days=20, seed=5)).run()


def _utc(values) -> pd.Series:  # type: ignore[no-untyped-def]
    return pd.Series(pd.to_datetime(list(values), utc=True)).astype("datetime64[ns, UTC]")


def side_frames(market) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # type: ignore[no-untyped-def]
    rows = [
        (n.published_at, s, n.id, n.true_sentiment, n.topic) for n in market.news for s in n.symbols
    ]
    news = pd.DataFrame(rows, columns=["published_at", "symbol", "news_id", "score", "topic"])
    news["published_at"] = _utc(news["published_at"])
    for name in default_spec("crypto").topics:
        news[f"topic_{name}"] = (news["topic"] == name).astype("float64")
    macro = pd.DataFrame(
        {
            "symbol": [m.name for m in market.macro],
            "ts": _utc(m.ts for m in market.macro),
            "published_at": _utc(m.published_at for m in market.macro),
            "value": [m.value for m in market.macro],
        }
    )
    flow = pd.DataFrame(
        {
            "symbol": [f.symbol for f in market.flow],
            "kind": [f.kind for f in market.flow],
            "ts": _utc(f.ts for f in market.flow),
            "published_at": _utc(f.published_at for f in market.flow),
            "value": [f.value for f in market.flow],
        }
    )
    return news.drop(columns="topic"), macro, flow


@pytest.mark.parametrize("symbol", ["BTCUSDT", "AAPL"])
def test_incremental_matches_batch_on_simulated_market(market, symbol: str) -> None:
    bars = market.bars[symbol]
    spec = default_spec(market.asset_classes[symbol])
    news, macro, flow = side_frames(market)
    bars = bars.iloc[:1500]
    batch = build_features(bars, asset_class=spec.asset_class, news=news, macro=macro, flow=flow)
    incremental = run_incremental(spec, bars, replay(bars["ts"], news, macro, flow))
    assert_frames_close(incremental, batch, rtol=1e-9)
    assert batch.attrs["rejected_side_rows"] == {}


def _corr(a: pd.Series, b: pd.Series) -> float:
    return float(np.corrcoef(a.to_numpy(), b.to_numpy())[0, 1])


def test_planted_effects_are_visible_in_the_features(market) -> None:
    news, macro, flow = side_frames(market)
    btc = build_features(
        market.bars["BTCUSDT"], asset_class="crypto", news=news, macro=macro, flow=flow
    )
    mu = market.oracle["BTCUSDT"]["mu"]
    assert _corr(btc["sentiment_score"], mu) > 0.3
    assert _corr(btc["exchange_net_flow"], mu) < -0.1  # inflow to exchanges = selling
    assert _corr(btc["fear_greed"], mu) < -0.05  # contrarian
    assert abs(_corr(btc["whale_transfers"], mu)) < 0.1  # planted without effect
    aapl = build_features(
        market.bars["AAPL"], asset_class="stocks", news=news, macro=macro, flow=flow
    )
    known = aapl["flow_age"] < default_spec("stocks").flow_age_cap_bars
    mu = market.oracle["AAPL"]["mu"]
    assert _corr(aapl["dark_pool_ratio"][known], mu[known]) > 0.1
    assert not aapl[list(default_spec("stocks").side_names)].isna().any().any()
