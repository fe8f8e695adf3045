"""Builders for the feature tests: real OHLCV files and simulator-like side inputs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from app.features.incremental import IncrementalFeatures
from app.features.side_inputs import SideInputs
from app.features.side_items import side_inputs_per_bar
from app.features.spec import DEFAULT_TOPICS, FLOW_FEATURE_KINDS, FeatureSpec
from app.types import AssetClass, Bar

MIN_NS = 60 * 1_000_000_000


def read_ohlcv(path: Path, n: int | None = None, symbol: str | None = None) -> pd.DataFrame:
    """A shared-data ``<SYMBOL>_5m.csv`` as a bars frame (ts as datetime64[ns, UTC])."""
    frame = pd.read_csv(path, nrows=n)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).astype("datetime64[ns, UTC]")
    frame.insert(0, "symbol", symbol or path.name.split("_")[0])
    return frame


def to_bars(frame: pd.DataFrame) -> list[Bar]:
    symbol = str(frame["symbol"].iloc[0])
    return [
        Bar(symbol, ts.to_pydatetime(), o, h, lo, c, v)
        for ts, o, h, lo, c, v in zip(
            frame["ts"],
            frame["open"],
            frame["high"],
            frame["low"],
            frame["close"],
            frame["volume"],
            strict=True,
        )
    ]


def run_incremental(
    spec: FeatureSpec,
    frame: pd.DataFrame,
    side: list[SideInputs] | None = None,
) -> pd.DataFrame:
    """Feed ``frame`` bar by bar; the rows as a frame with the batch engine's columns."""
    bars = to_bars(frame)
    engine = IncrementalFeatures(spec, bars[0].symbol, spec.asset_class)
    rows = [engine.update(b, side[i] if side else None) for i, b in enumerate(bars)]
    out = pd.DataFrame(rows, columns=list(spec.feature_names))
    out.insert(0, "ts", frame["ts"].to_numpy())
    return out


def all_flow_spec(asset_class: AssetClass = AssetClass.CRYPTO) -> FeatureSpec:
    """A spec reading every modality and every flow kind (exercises all side code paths)."""
    return FeatureSpec(
        asset_class=asset_class,
        topics=DEFAULT_TOPICS[:3],
        fear_greed_series="fear_greed_crypto",
        implied_vol_series="dvol",
        flow_features=tuple(FLOW_FEATURE_KINDS),
    )


def side_frames(
    ts: pd.Series, symbol: str, seed: int = 0, density: float = 1.0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Random scored news, macro and flow frames around the bars' time range.

    Timings are random to the nanosecond, include exact bar-close stamps and ties, items
    before the first bar and after the last, other symbols and other series.
    """
    rng = np.random.default_rng(seed)
    t0 = int(ts.iloc[0].value) - 6 * 60 * MIN_NS
    t1 = int(ts.iloc[-1].value) + 60 * MIN_NS
    closes = ts.astype("int64").to_numpy() + 5 * MIN_NS

    def stamps(n: int) -> np.ndarray:
        out = rng.integers(t0, t1, size=n)
        exact = rng.random(n) < 0.2  # some exactly at a bar close
        out[exact] = rng.choice(closes, size=int(exact.sum()))
        return np.sort(out - out % 1000)  # domain datetimes carry microseconds

    def utc(ns: np.ndarray) -> pd.Series:
        return pd.Series(pd.to_datetime(ns, utc=True)).astype("datetime64[ns, UTC]")

    span_bars = max(1, (t1 - t0) // (5 * MIN_NS))
    n_news = max(3, int(span_bars * 0.3 * density))
    pub = stamps(n_news)
    news = pd.DataFrame(
        {
            "published_at": utc(pub),
            "symbol": rng.choice([symbol, symbol, "OTHER"], size=n_news),
            "news_id": [f"n{i}" for i in range(n_news)],
            "score": rng.uniform(-1, 1, n_news),
        }
    )
    for name in DEFAULT_TOPICS[:2]:  # the third spec topic is absent: reads as 0
        news[f"topic_{name}"] = rng.uniform(0, 1, n_news)

    macro_rows = []
    for name, every, low, high in (
        ("fear_greed_crypto", 288, 0, 100),
        ("dvol", 12, 20, 90),
        ("vix", 12, 10, 40),
    ):
        n = max(2, int(span_bars / every * density) + 1)
        p = stamps(n)
        macro_rows.append(
            pd.DataFrame(
                {
                    "symbol": name,
                    "ts": utc(p - 60 * MIN_NS),
                    "published_at": utc(p),
                    "value": rng.uniform(low, high, n),
                }
            )
        )
    macro = pd.concat(macro_rows, ignore_index=True)

    flow_rows = []
    kinds = sorted({k for ks in FLOW_FEATURE_KINDS.values() for k in ks})
    for kind in kinds:
        n = max(3, int(span_bars * 0.1 * density))
        p = stamps(n)
        if kind == "dark_pool_ratio":
            value = rng.uniform(0.2, 0.7, n)
        elif kind == "exchange_net_flow":
            value = rng.normal(0, 500, n)
        else:
            value = rng.lognormal(5, 1, n)
        p[1] = p[0]  # a tie in published_at
        flow_rows.append(
            pd.DataFrame(
                {
                    "symbol": rng.choice([symbol, symbol, "OTHER"], size=n),
                    "kind": kind,
                    "ts": utc(p - 30 * MIN_NS),
                    "published_at": utc(p),
                    "value": value,
                }
            )
        )
    flow = pd.concat(flow_rows, ignore_index=True)
    return news, macro, flow


def replay(ts: pd.Series, news, macro, flow) -> list[SideInputs]:  # type: ignore[no-untyped-def]
    """Per-bar deliveries of valid side frames: a row the replay refuses fails the test."""
    rejected: Counter[str] = Counter()
    per_bar = side_inputs_per_bar(ts, news=news, macro=macro, flow=flow, rejected=rejected)
    assert not rejected, f"replay refused side rows: {dict(rejected)}"
    return per_bar


def assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, rtol: float, start: int = 0) -> float:
    """Column-wise ``|a-b| <= rtol*|b|`` (NaN must match NaN); returns the worst relative gap."""
    worst = 0.0
    for column in b.columns:
        if column == "ts":
            continue
        x = a[column].to_numpy(np.float64)[start:]
        y = b[column].to_numpy(np.float64)[start:]
        both_nan = np.isnan(x) & np.isnan(y)
        assert np.array_equal(np.isnan(x), np.isnan(y)), f"{column}: NaN pattern differs"
        gap = np.abs(x - y)[~both_nan]
        scale = np.abs(y)[~both_nan]
        bad = gap > rtol * scale
        # an exact 0 in one engine and 1e-17 in the other is not a relative error
        bad &= gap > 1e-15
        assert not bad.any(), (
            f"{column}: {int(bad.sum())} rows differ, first at "
            f"{int(np.flatnonzero(bad)[0]) + start}: {x[~both_nan][bad][0]!r} vs "
            f"{y[~both_nan][bad][0]!r}"
        )
        if len(gap):
            rel = gap / np.maximum(scale, 1e-300)
            worst = max(worst, float(np.max(np.where(gap > 1e-15, rel, 0.0))))
    return worst
