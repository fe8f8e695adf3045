"""One sentiment model per process, reloaded when the registry's current head changes.

Loading the encoder costs seconds, so the commands that score or tag news (``ingest-side``,
``features``) share one loaded model across calls in a process (a scheduler, the tests). The
cache is keyed on the settings, the registry folder and the registry's current head version,
so a head trained (``sentiment-train``) after the first load is picked up by the next call.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import SentimentSettings
from app.features.sentiment_heads import HeadRegistry

if TYPE_CHECKING:
    from app.features.sentiment import SentimentModel


def cached_sentiment_model(settings: SentimentSettings, registry_dir: Path | str) -> SentimentModel:
    """The configured model with the registry's current head (zero-shot when there is none)."""
    registry_dir = Path(registry_dir)
    return _load(settings, registry_dir, HeadRegistry(registry_dir).current_version())


@functools.lru_cache(maxsize=1)
def _load(settings: SentimentSettings, registry_dir: Path, version: str | None) -> SentimentModel:
    del version  # part of the cache key only: ``load`` reads the current head itself
    from app.features.sentiment import SentimentModel  # torch: imported on first use

    return SentimentModel.load(settings, registry_dir=registry_dir)
