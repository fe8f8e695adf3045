"""Headline sentiment and topic intensity: an encoder, a head and a topic model on one cache.

An embedding encoder needs a head (zero-shot prototypes, or a logistic regression trained by
``sentiment-train``); a classifier encoder gives class probabilities itself. Every text is
encoded once: results are cached by the sha256 of the normalised text (in memory, optionally
also in a SQLite file). Optional ensemble partners are averaged class by class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from app.config import SentimentSettings
from app.errors import InputError
from app.text.embedding_cache import EncodingCache
from app.text.encoder import Encoded, TextEncoder, normalize_text, text_key
from app.text.heads import CLASSES, LogisticHead, SentimentHead, ZeroShotHead, polarity
from app.text.prototypes import SENTIMENT_PROTOTYPES
from app.text.topics import TopicModel

HeadChoice = Literal["auto", "zero-shot", "current"]


class SentimentModel:
    """Sentiment score in [-1, 1] and topic intensities in [0, 1] for texts.

    Build with :meth:`load`. ``with_head`` gives a second view that shares the encoder and the
    cache (e.g. to compare the zero-shot and trained heads on the same texts).
    """

    def __init__(
        self,
        encoder: TextEncoder,
        *,
        head: SentimentHead | None = None,
        topics: Sequence[str] = (),
        topic_descriptions: Mapping[str, Sequence[str]] | None = None,
        batch_size: int = 64,
        cache: EncodingCache | None = None,
        topic_floor: float = 0.2,
        topic_ceiling: float = 0.6,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size={batch_size!r}: must be >= 1")
        self.topics = TopicModel(
            topics, topic_descriptions, floor=topic_floor, ceiling=topic_ceiling
        )
        self.encoder = encoder
        self.batch_size = batch_size
        self.cache = cache if cache is not None else EncodingCache(encoder.name)
        if encoder.kind == "embedding" and head is None:
            head = self.zero_shot_head()
        self.head = head
        self.partners: tuple[SentimentModel, ...] = ()  # averaged with this model's classes

    # ---------------------------------------------------------------- construction

    @classmethod
    def load(
        cls,
        settings: SentimentSettings | None = None,
        *,
        head: HeadChoice = "auto",
        trained: LogisticHead | None = None,
        head_origin: str = "registry_dir=None",
        device: str | None = None,
        cache_path: Path | str | None = None,
    ) -> SentimentModel:
        """Load the configured model (empty = packaged MiniLM) and pick its head.

        ``trained`` is the registry's promoted head, if any (``head_origin`` names where it
        came from, for errors); the registry is read by ``app.models.text_loader``.
        ``head="auto"`` uses ``trained`` when given, else the zero-shot prototypes;
        ``"zero-shot"`` ignores it; ``"current"`` insists on it; classifier models ignore heads.
        """
        settings = settings or SentimentSettings()
        if head == "zero-shot":
            trained = None
        encoder = TextEncoder(
            settings.model,
            device=device or settings.device,
            max_length=settings.max_length,
        )
        if encoder.kind == "classifier":
            trained = None
        elif head == "current" and trained is None:
            raise InputError(f"{head_origin}: no trained sentiment head (run sentiment-train)")
        elif trained is not None and trained.meta.get("encoder") not in (None, encoder.name):
            raise InputError(
                f"{head_origin}/{trained.version}: head trained on encoder "
                f"{trained.meta.get('encoder')!r}, but sentiment.model is {encoder.name!r}"
            )
        cache_file = cache_path or settings.cache_path or None
        cache = EncodingCache(encoder.name, path=Path(cache_file) if cache_file else None)
        model = cls(
            encoder,
            head=trained,  # None: zero-shot for an embedding model, none needed for a classifier
            topics=settings.topics,
            batch_size=settings.batch_size,
            cache=cache,
        )
        for ref in settings.ensemble:
            # a partner's registry head would belong to the main encoder: partners that are
            # embedding models use their zero-shot head; classifiers need none
            member = settings.model_copy(update={"model": ref, "ensemble": ()})
            model.partners += (
                cls.load(member, head="zero-shot", device=device, cache_path=cache_path),
            )
        return model

    def with_head(self, head: SentimentHead) -> SentimentModel:
        """Same encoder and cache, another head."""
        twin = SentimentModel.__new__(SentimentModel)
        twin.__dict__.update(self.__dict__)
        twin.head = head
        return twin

    def zero_shot_head(self, temperature: float = 0.05) -> ZeroShotHead:
        by_class = {label: self.embed(SENTIMENT_PROTOTYPES[label]) for label in CLASSES}
        return ZeroShotHead.from_prototypes(by_class, temperature)

    # ---------------------------------------------------------------- properties

    @property
    def kind(self) -> str:
        return self.encoder.kind

    @property
    def head_name(self) -> str:
        if self.kind == "classifier":
            own = "classifier"
        else:
            version = getattr(self.head, "version", "")
            own = f"{self.head.name}:{version}" if version else self.head.name
        if not self.partners:
            return own
        others = ",".join(f"{p.encoder.name}:{p.head_name}" for p in self.partners)
        return f"{own}+mean({others})"

    @property
    def topic_names(self) -> tuple[str, ...]:
        return self.topics.names

    @property
    def encoder_calls(self) -> int:
        return self.encoder.calls

    # ---------------------------------------------------------------- inference

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """Encodings for ``texts``, computing only the ones not cached (each distinct once)."""
        keys = [text_key(t) for t in texts]
        found: dict[str, Encoded] = {}
        todo: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key in found or key in todo:
                continue
            hit = self.cache.get(key)
            if hit is None:
                todo[key] = normalize_text(text)
            else:
                found[key] = hit
        if todo:
            # Length-sorted batches pad less: a few long bodies don't slow every headline.
            pending = sorted(todo.items(), key=lambda kv: len(kv[1]))
            for start in range(0, len(pending), self.batch_size):
                chunk = pending[start : start + self.batch_size]
                encoded = self.encoder.encode([text for _, text in chunk])
                pairs = [(key, enc) for (key, _), enc in zip(chunk, encoded, strict=True)]
                self.cache.put_many(pairs)
                found.update(pairs)
        return [found[key] for key in keys]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) L2-normalised embeddings."""
        encs = self.encode(texts)
        if not encs:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([e.embedding for e in encs])

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) class probabilities in CLASSES order (negative, neutral, positive); with
        partners, the equal-weight mean of every member's probabilities."""
        if len(texts) == 0:
            return np.zeros((0, len(CLASSES)))
        encs = self.encode(texts)
        if self.kind == "classifier":
            own = np.stack([e.probs for e in encs])
        else:
            own = self.head.predict_proba(np.stack([e.embedding for e in encs]))
        if not self.partners:
            return own
        return np.mean([own, *(p.probabilities(texts) for p in self.partners)], axis=0)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """(n,) sentiment in [-1, 1] = P(positive) - P(negative)."""
        return polarity(self.probabilities(texts))

    def topic_intensity(self, texts: Sequence[str]) -> np.ndarray:
        """(n, n_topics) in [0, 1]: best cosine to a topic's phrases, ramped floor..ceiling."""
        return self.topics.intensity(self.embed, texts)
