"""Decayed-sum columns (news score, z-scored flow events): hand-computed values, batch =
incremental, and nothing published after a bar's close reaches it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.features.batch import build_features
from app.features.rolling import event_zscores
from app.features.spec import default_spec
from tests.builders import bars_frame
from tests.unit.features.feat_builders import replay, run_incremental

FIVE_MIN = pd.Timedelta(minutes=5)


def _utc(values) -> pd.Series:  # type: ignore[no-untyped-def]
    return pd.Series(pd.to_datetime(values, utc=True)).astype("datetime64[ns, UTC]")


def _inputs(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    close = frame["ts"] + FIVE_MIN
    news = pd.DataFrame(
        {
            "published_at": _utc([close.iloc[10], close.iloc[12] - pd.Timedelta(minutes=2)]),
            "symbol": "BTCUSDT",
            "news_id": ["a", "b"],
            "score": [0.8, -0.5],
        }
    )
    flow_pub = [close.iloc[5], close.iloc[17], close.iloc[29] + pd.Timedelta(1, "us")]
    flow = pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "ts": _utc(flow_pub),
            "kind": "exchange_net_flow",
            "published_at": _utc(flow_pub),
            "value": [100.0, -300.0, 50.0],
        }
    )
    return news, flow


def test_news_and_flow_sums_by_hand() -> None:
    frame = bars_frame(n=60)
    news, flow = _inputs(frame)
    out = build_features(frame, asset_class="crypto", news=news, flow=flow)
    s15, s240 = out["sentiment_sum_15m"].to_numpy(), out["sentiment_sum_240m"].to_numpy()
    assert (s15[:10] == 0).all() and s15[10] == pytest.approx(0.8)
    assert s15[11] == pytest.approx(0.8 * 0.5 ** (5 / 15), rel=1e-12)  # one bar of decay
    # bar 14 closes 20 min after item a and 12 min after item b
    assert s15[14] == pytest.approx(0.8 * 0.5 ** (20 / 15) - 0.5 * 0.5 ** (12 / 15), rel=1e-12)
    assert s240[14] == pytest.approx(0.8 * 0.5 ** (20 / 240) - 0.5 * 0.5 ** (12 / 240), rel=1e-12)
    z = event_zscores(np.array([100.0, -300.0, 50.0]), 30)
    f60 = out["exchange_net_flow_sum_60m"].to_numpy()
    # the first print has no history (z 0), so the sum first moves at the second one
    assert z[0] == 0.0 and z[1] == pytest.approx(-1.0)
    assert (f60[:17] == 0).all() and f60[17] == pytest.approx(z[1], rel=1e-12)
    assert f60[18] == pytest.approx(z[1] * 0.5 ** (5 / 60), rel=1e-12)
    expected_29 = z[0] * 0.5 ** (24 * 5 / 60) + z[1] * 0.5 ** (12 * 5 / 60)
    assert f60[29] == pytest.approx(expected_29, rel=1e-12)  # the third print is 1 us late
    assert f60[30] != pytest.approx(expected_29 * 0.5 ** (5 / 60))
    assert (out["whale_transfers_sum_15m"] == 0).all()  # no events of that kind


def test_incremental_matches_batch_on_the_sums() -> None:
    frame = bars_frame(n=60)
    news, flow = _inputs(frame)
    spec = default_spec("crypto")
    batch = build_features(frame, asset_class="crypto", news=news, flow=flow, spec=spec)
    inc = run_incremental(spec, frame, replay(frame["ts"], news, None, flow))
    names = [*spec.news_sum_names, *spec.flow_sum_names]
    np.testing.assert_allclose(
        inc[names].to_numpy(), batch[names].to_numpy(), rtol=1e-9, atol=1e-15
    )
