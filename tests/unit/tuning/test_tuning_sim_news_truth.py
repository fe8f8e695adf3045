"""The simulator's ``true_sentiment`` is for evaluation only: the walk-forward data path scores
the headline text with the project's sentiment model (the registry's trained head when there is
one) and never reads the generator's labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.config import load_settings
from app.features.batch import build_features
from app.features.spec import default_spec
from app.models.registry import save_head
from app.sim.config import SimConfig
from app.sim.files import write_simulation
from app.sim.market import SimulatedMarket
from app.text.heads import fit_logistic_head
from app.text.prototypes import SENTIMENT_PROTOTYPES
from app.tuning.data_loading import load_data
from tests.unit.text.sentiment_helpers import minilm

ROOT = Path(__file__).resolve().parents[3]
# every module between a headline and a model input on the walk-forward path
FEATURE_PATH = [
    *sorted((ROOT / "app" / "features").glob("*.py")),
    ROOT / "app" / "tuning" / "data_loading.py",
]


@pytest.fixture(scope="module")
def sim_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """One small market, and a copy whose true sentiments are all flipped."""
    base = tmp_path_factory.mktemp("truth")
    result = SimulatedMarket(SimConfig.for_symbols(["BTCUSDT"], days=2, news_per_day=6.0)).run()
    original, flipped = base / "original", base / "flipped"
    write_simulation(result, original)
    shutil.copytree(original, flipped)
    news = pd.read_csv(flipped / "news.csv", dtype=str, keep_default_na=False)
    assert len(news) >= 5
    news["true_sentiment"] = [f"{-float(v):.3f}" for v in news["true_sentiment"]]
    news.to_csv(flipped / "news.csv", index=False)
    return original, flipped


def test_no_feature_module_mentions_true_sentiment() -> None:
    assert len(FEATURE_PATH) > 5
    readers = [p.name for p in FEATURE_PATH if "true_sentiment" in p.read_text()]
    assert readers == []


def test_flipping_true_sentiment_changes_no_feature(sim_dirs, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("APP_REGISTRY_DIR", str(tmp_path / "empty-registry"))
    original, flipped = (
        load_data([d], None, None, news=True, settings=load_settings()) for d in sim_dirs
    )
    assert original.news is not None and len(original.news) >= 5
    assert "true_sentiment" not in original.news.columns
    assert original.describe()["sentiment_head"] == "zero-shot"
    pd.testing.assert_frame_equal(original.news, flipped.news)
    spec = default_spec("crypto")
    a, b = (
        build_features(
            d.bars["BTCUSDT"],
            asset_class="crypto",
            news=d.news,
            macro=d.macro,
            flow=d.flow,
            spec=spec,
        )  # fmt: skip
        for d in (original, flipped)
    )
    pd.testing.assert_frame_equal(a, b)
    assert np.abs(a["sentiment_sum_60m"].to_numpy()).max() > 0  # the news did reach the features


def test_walkforward_news_uses_the_registry_head(sim_dirs, tmp_path, monkeypatch) -> None:
    model = minilm()
    texts = [
        t for label in ("positive", "neutral", "negative") for t in SENTIMENT_PROTOTYPES[label]
    ]
    labels = [
        label for label in ("positive", "neutral", "negative") for _ in SENTIMENT_PROTOTYPES[label]
    ]
    head = fit_logistic_head(model.embed(texts), labels, c=10.0)
    version = save_head(tmp_path, head, {"encoder": model.encoder.name, "n": len(texts)})
    monkeypatch.setenv("APP_REGISTRY_DIR", str(tmp_path))
    trained = load_data([sim_dirs[0]], None, None, news=True, settings=load_settings())
    assert trained.describe()["sentiment_head"].endswith(version)
    monkeypatch.setenv("APP_REGISTRY_DIR", str(tmp_path / "empty-registry"))
    zero_shot = load_data([sim_dirs[0]], None, None, news=True, settings=load_settings())
    assert trained.news is not None and zero_shot.news is not None
    assert not np.allclose(trained.news["score"], zero_shot.news["score"])
