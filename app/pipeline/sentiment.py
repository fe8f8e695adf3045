"""``train_sentiment``: fit the sentiment head on labelled sentences and register it.

The encoder stays frozen; a multinomial logistic regression is fitted on its embeddings and
saved as a new version in ``<registry>/sentiment/`` with the ``current`` pointer moved to it,
so every later ``load_sentiment_model(registry_dir=...)`` uses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.errors import InputError
from app.models.registry import save_head
from app.models.text_datasets import classification_metrics, read_labelled_csv, select_split
from app.text.heads import fit_logistic_head
from app.text.sentiment import SentimentModel


@dataclass(frozen=True, slots=True)
class SentimentTrainResult:
    """The registered head version and how it was fitted (``to_dict()``: the JSON summary)."""

    version: str
    registry: Path
    n: int
    rejected: dict[str, int]
    c: float
    train_accuracy: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "registry": str(self.registry),
            "n": self.n,
            "rejected": dict(self.rejected),
            "C": self.c,
            "train_accuracy": self.train_accuracy,
            "seconds": self.seconds,
        }


def train_sentiment(
    settings: Settings,
    data_path: Path,
    *,
    split: str = "all",
    test_fraction: float = 0.2,
    c: float | None = None,
    device: str | None = None,
    registry_dir: Path | None = None,
) -> SentimentTrainResult:
    """Fit and register a head on ``data_path`` (CSV sentence,label); ``split='train'`` leaves
    out the deterministic held-out part."""
    registry_dir = Path(registry_dir or settings.registry_dir)
    if c is not None and not c > 0:
        raise InputError(f"--c={c!r}: must be > 0")
    data = read_labelled_csv(data_path)
    if data.kind != "classes":
        raise InputError(f"{data_path}: training needs a label column (positive/neutral/negative)")
    train = select_split(data, split, test_fraction)
    if len(train) == 0:
        raise InputError(f"{data_path}: no usable rows (rejected: {dict(data.rejected)})")
    started = time.perf_counter()
    model = SentimentModel.load(settings.sentiment, head="zero-shot", device=device)
    if model.kind != "embedding":
        raise InputError(
            f"sentiment.model={settings.sentiment.model!r} is a classifier; heads are for "
            "embedding models"
        )
    embeddings = model.embed(train.texts)
    head = fit_logistic_head(embeddings, train.labels, c=c)
    train_metrics = classification_metrics(train.labels, head.predict_proba(embeddings), "classes")
    meta = {
        "encoder": model.encoder.name,
        "data_path": str(data_path),
        "data_sha256": train.sha256(),
        "split": split,
        "test_fraction": test_fraction if split != "all" else None,
        "n": len(train),
        "rejected": dict(data.rejected),
        "C": head.meta["C"],
        "train_metrics": train_metrics,
    }
    version = save_head(registry_dir, head, meta)
    return SentimentTrainResult(
        version=version,
        registry=registry_dir / "sentiment" / version,
        n=len(train),
        rejected=dict(data.rejected),
        c=head.meta["C"],
        train_accuracy=train_metrics["accuracy"],
        seconds=round(time.perf_counter() - started, 2),
    )
