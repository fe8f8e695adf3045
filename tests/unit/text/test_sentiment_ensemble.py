"""``sentiment.ensemble``: partner models whose class probabilities are averaged with the
main model's (two tiny random BERT classifiers on disk, no download)."""

from __future__ import annotations

import numpy as np
import pytest

from app.config import SentimentSettings, load_settings
from app.errors import InputError
from app.text.sentiment import SentimentModel
from tests.unit.text.sentiment_helpers import write_tiny_classifier

TEXTS = ["apple shares rose to a record high", "bitcoin hack , sec sues", "the fed rates"]


def test_ensemble_probabilities_are_the_mean_of_its_members(tmp_path):
    a = str(write_tiny_classifier(tmp_path / "a", seed=1))
    b = str(write_tiny_classifier(tmp_path / "b", seed=2))
    alone_a = SentimentModel.load(SentimentSettings(model=a), device="cpu").probabilities(TEXTS)
    alone_b = SentimentModel.load(SentimentSettings(model=b), device="cpu").probabilities(TEXTS)
    assert not np.allclose(alone_a, alone_b)  # the members differ, so the mean is informative
    both = SentimentModel.load(SentimentSettings(model=a, ensemble=(b,)), device="cpu")
    np.testing.assert_allclose(both.probabilities(TEXTS), (alone_a + alone_b) / 2, atol=1e-9)
    np.testing.assert_allclose(
        both.score(TEXTS), (alone_a[:, 2] - alone_a[:, 0] + alone_b[:, 2] - alone_b[:, 0]) / 2
    )
    assert both.head_name == f"classifier+mean({b}:classifier)"
    assert both.topic_intensity(TEXTS).shape == (3, len(both.topic_names))  # from the main model


def test_ensemble_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("APP_SENTIMENT__ENSEMBLE", '["/models/a", "/models/b"]')
    assert load_settings().sentiment.ensemble == ("/models/a", "/models/b")


def test_missing_partner_is_named(tmp_path):
    a = str(write_tiny_classifier(tmp_path / "a"))
    missing = str(tmp_path / "nope")
    with pytest.raises(InputError, match="nope"):
        SentimentModel.load(SentimentSettings(model=a, ensemble=(missing,)), device="cpu")
