"""The store path builds the same scored-news frame as ``score_news`` on the ``--data`` path:
simulator folder -> ``ingest`` + ``ingest-side --source sim`` -> DuckDB -> ``scored_news`` /
``load_store``, topic intensities computed from the stored text, never from ``news.topic``."""

from __future__ import annotations

import json
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from app.config import load_settings
from app.features.spec import default_spec
from app.models.text_loader import cached_sentiment_model
from app.sim.config import SimConfig
from app.sim.files import write_simulation
from app.sim.market import SimulatedMarket
from app.store import open_store
from app.text.tagging import score_news
from app.tuning.data_loading import load_store
from app.tuning.stored_news import scored_news
from app.types import AssetClass

SYMBOLS = ["BTCUSDT", "AAPL"]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("store_topics")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("APP_REGISTRY_DIR", str(tmp / "registry"))  # zero-shot head, no trained one
        result = SimulatedMarket(SimConfig.for_symbols(SYMBOLS, seed=5, days=2)).run()
        folder = write_simulation(result, tmp / "sim")
        url = f"duckdb:///{tmp}/store.db"
        for argv in (
            ["ingest", "--source", "sim", "--path", str(folder), "--store", url],
            ["ingest-side", "--source", "sim", "--path", str(folder), "--store", url],
        ):
            assert main(argv) == 0
        settings = load_settings()
        model = cached_sentiment_model(settings.sentiment, settings.registry_dir)
    assets = list(result.manifest.assets.values())
    expected = score_news(result.news, assets, model)  # the walk-forward --data definition
    return url, tmp, model, expected, result


def _assert_same_scored_news(got: pd.DataFrame, want: pd.DataFrame, topics) -> None:
    assert len(got) == len(want) > 0
    for col in ("published_at", "symbol", "news_id"):
        assert got[col].tolist() == want[col].tolist(), col
    assert got["published_at"].dtype == "datetime64[ns, UTC]"
    np.testing.assert_allclose(got["score"], want["score"], atol=1e-6, rtol=0)
    for name in topics:
        np.testing.assert_allclose(got[f"topic_{name}"], want[f"topic_{name}"], atol=1e-6, rtol=0)


def test_store_frame_equals_score_news(ingested, capsys) -> None:
    url, _, model, expected, _ = ingested
    capsys.readouterr()
    topics = model.topic_names
    store = open_store(url)
    try:
        for symbol in SYMBOLS:
            asset_class = AssetClass.CRYPTO if symbol == "BTCUSDT" else AssetClass.STOCKS
            spec = default_spec(asset_class, topics=topics)
            got = scored_news(store, symbol, spec, None, None, None, topic_model=model)
            want = expected[expected["symbol"] == symbol].reset_index(drop=True)
            assert list(got.columns) == list(expected.columns)
            _assert_same_scored_news(got, want, topics)
    finally:
        store.close()
    loaded = load_store(
        url, ["BTCUSDT"], AssetClass.CRYPTO, topic_model=model, settings=load_settings()
    )
    want = expected[expected["symbol"] == "BTCUSDT"].reset_index(drop=True)
    _assert_same_scored_news(loaded.news, want, topics)
    # the store path brings the text embeddings the walk-forward's news-impact columns need
    assert loaded.news_embeddings.shape == (len(loaded.news), model.encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(loaded.news_embeddings, axis=1), 1.0, atol=1e-5)
    bare = load_store(
        url,
        ["BTCUSDT"],
        AssetClass.CRYPTO,
        topic_model=model,
        news_impact=False,
        settings=load_settings(),
    )
    assert bare.news_embeddings is None
    # intensities, not 1/0 labels: the simulator's headlines fall between the ramp's ends
    values = expected[[f"topic_{t}" for t in topics]].to_numpy()
    assert ((values > 0.01) & (values < 0.99)).mean() > 0.2


def test_news_topic_label_is_not_read(ingested) -> None:
    url, tmp, model, expected, _ = ingested
    db = url.removeprefix("duckdb:///")
    copy = tmp / "relabelled.db"
    shutil.copyfile(db, copy)
    con = duckdb.connect(str(copy))
    try:
        con.execute("UPDATE news SET topic = 'earnings'")  # every label says the same
    finally:
        con.close()
    store = open_store(f"duckdb:///{copy}")
    try:
        got = scored_news(
            store, "AAPL", default_spec("stocks"), None, None, None, topic_model=model
        )
    finally:
        store.close()
    want = expected[expected["symbol"] == "AAPL"].reset_index(drop=True)
    _assert_same_scored_news(got, want, model.topic_names)


def test_features_command_uses_text_topics(ingested, tmp_path, capsys, monkeypatch) -> None:
    url, tmp, *_ = ingested
    monkeypatch.setenv("APP_REGISTRY_DIR", str(tmp / "registry"))
    out = tmp_path / "btc.parquet"
    capsys.readouterr()
    assert main(["features", "--store", url, "--symbol", "BTCUSDT", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["side_rows"]["news"] > 0
    written = pd.read_parquet(out)
    topic_cols = [c for c in written.columns if c.startswith("topic_")]
    assert len(topic_cols) == 6
    assert (written[topic_cols].to_numpy() > 0).any()
