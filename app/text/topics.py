"""Topic intensity: how strongly a text is about each configured topic, zero-shot.

A topic is described by a few phrases (``app.text.prototypes``, or the settings); a text's
intensity for it is its best cosine similarity to those phrases, ramped linearly from
``floor`` (0) to ``ceiling`` (1). The phrases are embedded once, on first use, by the same
encoder as the texts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from app.errors import InputError
from app.text.prototypes import topic_phrases

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, d) L2-normalised embeddings


class TopicModel:
    """Intensities in [0, 1] for a fixed list of topics."""

    def __init__(
        self,
        topics: Sequence[str] = (),
        descriptions: Mapping[str, Sequence[str]] | None = None,
        *,
        floor: float = 0.2,
        ceiling: float = 0.6,
    ) -> None:
        if not 0.0 <= floor < ceiling <= 1.0:
            raise InputError(
                f"topic_floor={floor!r}, topic_ceiling={ceiling!r}: need 0 <= floor < ceiling <= 1"
            )
        self.names = tuple(topics)
        self._descriptions = dict(descriptions or {})
        self._floor = floor
        self._ceiling = ceiling
        self._phrase_embeddings: list[np.ndarray] | None = None

    def intensity(self, embed: Embed, texts: Sequence[str]) -> np.ndarray:
        """(n, n_topics) in [0, 1]: best cosine to a topic's phrases, ramped floor..ceiling."""
        if not self.names:
            return np.zeros((len(texts), 0))
        if len(texts) == 0:
            return np.zeros((0, len(self.names)))
        if self._phrase_embeddings is None:
            self._phrase_embeddings = [
                embed(topic_phrases(t, self._descriptions)) for t in self.names
            ]
        emb = embed(texts).astype(np.float64)
        best = np.stack([(emb @ phrases.T).max(axis=1) for phrases in self._phrase_embeddings], 1)
        ramp = (best - self._floor) / (self._ceiling - self._floor)
        return np.clip(ramp, 0.0, 1.0)
