"""The two as-of implementations (DuckDB SQL, client-side pandas) against a brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.store import DuckDBStore
from app.store.asof import asof_align
from tests.builders import T0, bars_frame


def brute_force(bar_ts: pd.Series, series: pd.DataFrame) -> list[float]:
    out = []
    for ts in bar_ts:
        known = series[series["published_at"] <= ts + pd.Timedelta(minutes=5)]
        if known.empty:
            out.append(np.nan)
            continue
        newest = known[known["published_at"] == known["published_at"].max()]
        out.append(float(newest.sort_values("ts")["value"].iloc[-1]))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_sql_and_client_side_asof_agree_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    bars = bars_frame(40, symbol="X")
    n = int(rng.integers(1, 25))
    ts = T0 + pd.to_timedelta(rng.integers(-30, 200, n), unit="min")
    published = ts + pd.to_timedelta(rng.choice([0, 0, 3, 17, 61], n), unit="min")
    series = (
        pd.DataFrame(
            {"symbol": "S", "ts": ts, "published_at": published, "value": rng.normal(size=n)}
        )
        .astype({"ts": "datetime64[ns, UTC]", "published_at": "datetime64[ns, UTC]"})
        .drop_duplicates(["symbol", "ts"])
    )
    want = brute_force(bars["ts"], series)

    client = asof_align(bars["ts"], series, "value", "published_at")
    with DuckDBStore() as store:
        store.write_bars(bars)
        store.write("macro", series)
        sql = store.asof_join("X", "macro", "S")

    np.testing.assert_allclose(client["value"].to_numpy(), want, equal_nan=True)
    np.testing.assert_allclose(sql["value"].to_numpy(), want, equal_nan=True)
    assert (sql["ts"] == bars["ts"]).all() and (client["ts"] == bars["ts"]).all()


def test_same_publication_instant_latest_ts_wins_in_both():
    bars = bars_frame(2, symbol="X")
    at = T0 + pd.Timedelta(minutes=5)
    series = pd.DataFrame(
        {
            "symbol": "S",
            "ts": [T0 + pd.Timedelta(minutes=1), T0],
            "published_at": [at, at],
            "value": [2.0, 1.0],
        }
    ).astype({"ts": "datetime64[ns, UTC]", "published_at": "datetime64[ns, UTC]"})
    with DuckDBStore() as store:
        store.write_bars(bars)
        store.write("macro", series)
        assert store.asof_join("X", "macro", "S")["value"].tolist() == [2.0, 2.0]
    assert asof_align(bars["ts"], series, "value", "published_at")["value"].tolist() == [2.0, 2.0]
