"""Trained sentiment heads in the model registry (kind ``sentiment``) on the packaged MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from app.errors import InputError
from app.models.registry import load_head, promote, promoted_version, save_head, versions
from app.text.heads import CLASSES, LogisticHead, fit_logistic_head, softmax
from app.text.prototypes import SENTIMENT_PROTOTYPES
from app.text.sentiment import SentimentModel
from tests.unit.text.sentiment_helpers import minilm

POSITIVE = [
    "Apple shares jump after quarterly profit beats forecasts",
    "Nokia's net sales grew 20% and operating margin improved",
    "Bitcoin soars to a record high as investors pile in",
]
NEGATIVE = [
    "Shares sink after the company reports a surprise loss",
    "Operating profit fell sharply and the firm cut its outlook",
    "Ethereum tumbles as exchange hack spooks traders",
]


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    return minilm()


def test_trained_head_round_trips_through_the_registry(model: SentimentModel, tmp_path) -> None:
    texts = [t for label in CLASSES for t in SENTIMENT_PROTOTYPES[label]]
    labels = [label for label in CLASSES for _ in SENTIMENT_PROTOTYPES[label]]
    head = fit_logistic_head(model.embed(texts), labels, c=10.0)
    assert promoted_version(tmp_path, "sentiment") is None
    version = save_head(tmp_path, head, {"encoder": model.encoder.name, "n": len(texts)})
    assert promoted_version(tmp_path, "sentiment") == version
    assert (tmp_path / "sentiment" / version / "head.npz").is_file()
    loaded = load_head(tmp_path)
    assert loaded.version == version and loaded.meta["n"] == len(texts)
    np.testing.assert_array_equal(loaded.coef, head.coef)
    trained = model.with_head(loaded)
    assert trained.head_name == f"trained:{version}"
    emb = model.embed(POSITIVE + NEGATIVE).astype(np.float64)
    np.testing.assert_allclose(
        trained.probabilities(POSITIVE + NEGATIVE),
        softmax(emb @ head.coef.T + head.intercept),
        atol=1e-12,
    )
    assert np.all(trained.score(POSITIVE) > 0) and np.all(trained.score(NEGATIVE) < 0)
    second = save_head(tmp_path, head, {"encoder": model.encoder.name, "n": 1})
    assert second != version and versions(tmp_path, "sentiment") == sorted([version, second])
    assert promote(tmp_path, version, "sentiment") == second
    assert load_head(tmp_path).version == version


def test_registry_refuses_missing_heads(tmp_path) -> None:
    with pytest.raises(InputError, match="no trained sentiment head"):
        load_head(tmp_path)
    with pytest.raises(InputError, match="version='nope'"):
        promote(tmp_path, "nope", "sentiment")


def test_each_kind_has_its_own_promoted_pointer_and_old_current_pointers_are_read(
    tmp_path,
) -> None:
    head = LogisticHead(coef=np.zeros((3, 4)), intercept=np.zeros(3))
    version = save_head(tmp_path, head, {"data_sha256": "abcd1234ff"}, make_promoted=False)
    assert version.endswith("-abcd1234") and promoted_version(tmp_path, "sentiment") is None
    (tmp_path / "sentiment" / "current").write_text(version + "\n")  # a registry of before
    assert promoted_version(tmp_path, "sentiment") == version
    assert load_head(tmp_path).version == version
    assert promoted_version(tmp_path) is None  # the price kind's pointer is another file
    newer = save_head(tmp_path, head, {"data_sha256": "abcd1234ff"})
    assert newer != version and (tmp_path / "sentiment" / "PROMOTED").is_file()
    assert promoted_version(tmp_path, "sentiment") == newer  # PROMOTED wins over current
    with pytest.raises(InputError, match="kind='weights'"):
        promoted_version(tmp_path, "weights")
