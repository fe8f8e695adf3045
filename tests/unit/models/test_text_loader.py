"""The process-wide sentiment model: loaded once, reloaded when the promoted head changes."""

from __future__ import annotations

import numpy as np
import pytest

from app.config import SentimentSettings
from app.models import text_loader
from app.models.registry import promote, save_head
from app.models.text_loader import cached_sentiment_model
from app.text.heads import LogisticHead


@pytest.fixture
def loads(monkeypatch):
    """load_sentiment_model replaced by a counter returning a fresh object per call."""
    calls: list[tuple[SentimentSettings, object]] = []

    def fake_load(settings, *, registry_dir=None, **_):
        calls.append((settings, registry_dir))
        return object()

    monkeypatch.setattr(text_loader, "load_sentiment_model", fake_load)
    text_loader._load.cache_clear()
    yield calls
    text_loader._load.cache_clear()


def _head(seed: float) -> LogisticHead:
    return LogisticHead(coef=np.full((3, 4), seed), intercept=np.zeros(3))


def test_same_head_is_loaded_once_and_a_new_promoted_head_reloads(loads, tmp_path) -> None:
    settings = SentimentSettings()
    zero_shot = cached_sentiment_model(settings, tmp_path)  # no head yet
    assert cached_sentiment_model(settings, str(tmp_path)) is zero_shot
    assert len(loads) == 1 and loads[0] == (settings, tmp_path)

    first = save_head(tmp_path, _head(1.0), {"data_sha256": "aaaa"})
    trained = cached_sentiment_model(settings, tmp_path)
    assert trained is not zero_shot and len(loads) == 2
    assert cached_sentiment_model(settings, tmp_path) is trained and len(loads) == 2

    save_head(tmp_path, _head(2.0), {"data_sha256": "bbbb"})
    newer = cached_sentiment_model(settings, tmp_path)
    assert newer is not trained and len(loads) == 3

    promote(
        tmp_path, first, "sentiment"
    )  # pointing back at an older version counts as a change too
    assert cached_sentiment_model(settings, tmp_path) is not newer and len(loads) == 4


def test_other_settings_load_another_model(loads, tmp_path) -> None:
    a = cached_sentiment_model(SentimentSettings(), tmp_path)
    b = cached_sentiment_model(SentimentSettings(batch_size=8), tmp_path)
    assert a is not b and len(loads) == 2
