"""``python -m app features``: a DuckDB store in, a Parquet matrix out, equal to the engine's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from app.cli.main import main
from app.config import load_settings
from app.features.batch import build_features
from app.features.spec import FeatureSpec, default_spec
from app.models.text_loader import load_sentiment_model
from app.store import open_store
from tests.builders import bars_frame

FIVE_MIN = pd.Timedelta(minutes=5)


def _utc(values) -> pd.Series:  # type: ignore[no-untyped-def]
    return pd.Series(pd.to_datetime(list(values), utc=True)).astype("datetime64[ns, UTC]")


HEADLINES = [
    "Bitcoin miner beats quarterly earnings forecast",
    "SEC sues crypto exchange over unregistered securities",
    "Exchange hacked, hot wallet drained of funds",
    "Fed signals rate cut as inflation cools",
]


@pytest.fixture()
def store_url(tmp_path, monkeypatch):
    monkeypatch.setenv("APP_REGISTRY_DIR", str(tmp_path / "registry"))  # zero-shot head
    url = f"duckdb:///{tmp_path}/store.db"
    store = open_store(url)
    bars = bars_frame(n=500, symbol="BTCUSDT", seed=4)
    store.write_bars(bars)
    store.write_bars(bars_frame(n=50, symbol="ETHUSDT", seed=5))
    rng = np.random.default_rng(0)
    pub = bars["ts"].iloc[rng.integers(0, 500, 40)] + pd.Timedelta(seconds=90)
    ids = [f"n{i}" for i in range(40)]
    topics = rng.choice(["earnings", "regulatory_risk", "other"], 40)
    store.write(
        "news",
        pd.DataFrame(
            {
                "id": ids,
                "ts": _utc(pub),
                "source": "wire",
                "title": [HEADLINES[i % len(HEADLINES)] for i in range(40)],
                "body": "",
                "symbols": "BTCUSDT",
                "url": "",
                "topic": topics,
            }
        ),
    )
    scores = rng.uniform(-1, 1, 40)
    store.write(
        "sentiment",
        pd.DataFrame(
            {
                "symbol": "BTCUSDT",
                "ts": _utc(pub),
                "news_id": ids,
                "score": scores,
                "model": "m1",
            }
        ),
    )
    days = _utc(pd.date_range(bars["ts"].iloc[0].floor("D"), periods=3, freq="D"))
    store.write(
        "macro",
        pd.DataFrame(
            {
                "symbol": "fear_greed_crypto",
                "ts": days - pd.Timedelta(days=1),
                "published_at": days,
                "value": [30.0, 55.0, 80.0],
            }
        ),
    )
    hours = _utc(pd.date_range(bars["ts"].iloc[0], periods=40, freq="h"))
    store.write(
        "flow",
        pd.DataFrame(
            {
                "symbol": "BTCUSDT",
                "ts": hours,
                "kind": "exchange_net_flow",
                "published_at": hours + pd.Timedelta(hours=1),
                "value": rng.normal(0, 100, 40),
            }
        ),
    )
    store.close()
    return url


def test_features_command_writes_the_engine_matrix(store_url, tmp_path, capsys) -> None:
    out = tmp_path / "features" / "btc.parquet"
    code = main(["features", "--store", store_url, "--symbol", "BTCUSDT", "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    spec = default_spec("crypto")
    assert summary["rows"] == 500 and summary["warmup_rows"] == spec.warmup_bars
    assert summary["feature_names"] == list(spec.feature_names)
    assert summary["columns"] == len(spec.feature_names) + 1
    assert summary["side_rows"] == {"news": 40, "macro": 3, "flow": 40}

    written = pd.read_parquet(out)
    meta = pq.read_schema(out).metadata[b"feature_spec"]
    assert FeatureSpec.from_dict(json.loads(meta)) == spec

    # the same matrix from the frames directly
    store = open_store(store_url)
    bars = store.read_bars("BTCUSDT")
    news = store.read("sentiment", "BTCUSDT").rename(columns={"ts": "published_at"})
    # topic intensity of the stored headline text (the news table's topic label is not read)
    settings = load_settings()
    model = load_sentiment_model(settings.sentiment, registry_dir=settings.registry_dir)
    stored = store.read("news").set_index("id")
    intensity = model.topic_intensity(stored.loc[news["news_id"], "title"].tolist())
    for j, name in enumerate(model.topic_names):
        news[f"topic_{name}"] = intensity[:, j]
    news = news.sort_values(["published_at", "news_id", "symbol"], kind="stable")
    expected = build_features(
        bars,
        asset_class="crypto",
        news=news,
        macro=store.read("macro"),
        flow=store.read("flow", "BTCUSDT"),
    )
    store.close()
    pd.testing.assert_frame_equal(written, expected.reset_index(drop=True), check_exact=True)
    assert written["topic_earnings"].max() > 0 and written["fear_greed"].abs().max() > 0
    assert written["exchange_net_flow"].abs().max() > 0


def test_range_and_errors(store_url, tmp_path, capsys) -> None:
    out = tmp_path / "eth.parquet"
    code = main(
        [
            "features",
            "--store",
            store_url,
            "--symbol",
            "ETHUSDT",
            "--out",
            str(out),
            "--start",
            "2025-01-01T01:00:00Z",
            "--end",
            "2025-01-01T02:00:00Z",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # macro rows whose period starts before --end (the third day is later)
    assert summary["rows"] == 12 and summary["side_rows"] == {"news": 0, "macro": 2, "flow": 0}

    assert (
        main(
            [
                "features",
                "--store",
                store_url,
                "--symbol",
                "DOGE",
                "--asset-class",
                "crypto",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "--symbol='DOGE'" in capsys.readouterr().err
    assert main(["features", "--store", store_url, "--symbol", "SOLUSDT", "--out", str(out)]) == 2
    assert "pass --asset-class" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "features",
                "--store",
                store_url,
                "--symbol",
                "ETHUSDT",
                "--out",
                str(out),
                "--start",
                "2025-01-01T01:00:00",
            ]
        )  # no time zone
