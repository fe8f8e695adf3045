"""The sentiment model with the registry's promoted head, and one such model per process.

``app.text`` knows nothing of the registry: this module reads the promoted head (kind
``sentiment``) and hands it to ``SentimentModel.load``. Loading the encoder costs seconds, so
the commands that score or tag news (``ingest-side``, ``features``) share one loaded model
across calls in a process (a scheduler, the tests). That cache is keyed on the settings, the
registry folder and the promoted head version, so a head trained (``sentiment-train``) after
the first load is picked up by the next call.
"""

from __future__ import annotations

import functools
from pathlib import Path

from app.config import SentimentSettings
from app.models.registry import kind_root, load_head, promoted_version
from app.text.sentiment import HeadChoice, SentimentModel


def load_sentiment_model(
    settings: SentimentSettings | None = None,
    *,
    registry_dir: Path | str | None = None,
    head: HeadChoice = "auto",
    device: str | None = None,
    cache_path: Path | str | None = None,
) -> SentimentModel:
    """The configured model (empty = packaged MiniLM) with its head picked (see
    ``SentimentModel.load``); the trained head is the registry's promoted one."""
    trained = None
    origin = "registry_dir=None"
    if registry_dir is not None:
        origin = str(kind_root(registry_dir, "sentiment"))
        if head != "zero-shot" and promoted_version(registry_dir, "sentiment"):
            trained = load_head(registry_dir)  # before the encoder: a broken registry fails fast
    return SentimentModel.load(
        settings,
        head=head,
        trained=trained,
        head_origin=origin,
        device=device,
        cache_path=cache_path,
    )


def cached_sentiment_model(settings: SentimentSettings, registry_dir: Path | str) -> SentimentModel:
    """The configured model with the registry's promoted head (zero-shot when there is none)."""
    registry_dir = Path(registry_dir)
    return _load(settings, registry_dir, promoted_version(registry_dir, "sentiment"))


@functools.lru_cache(maxsize=1)
def _load(settings: SentimentSettings, registry_dir: Path, version: str | None) -> SentimentModel:
    del version  # part of the cache key only: ``load_sentiment_model`` reads the head itself
    return load_sentiment_model(settings, registry_dir=registry_dir)
