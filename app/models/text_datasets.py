"""Labelled sentiment text sets: reading, a deterministic held-out split, and metrics.

Two CSV shapes are read:
- ``sentence,label`` with labels positive / neutral / negative (Financial PhraseBank);
- a continuous score in [-1, 1] (SemEval-2017 headlines ``title,sentiment``; FiQA
  ``sentence,sentiment_score``): the label is the score's sign, and a zero score is rejected
  because it has no sign to check against.

Bad rows are rejected and counted by reason; good rows are kept.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from app.errors import InputError
from app.text.heads import CLASSES

TEXT_COLUMNS = ("sentence", "title", "text")
CLASS_COLUMNS = ("label",)
SCORE_COLUMNS = ("sentiment", "sentiment_score", "score")


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with class labels; ``kind`` says whether labels are 3-class or signs of a score."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    kind: Literal["classes", "polarity"]
    source: str = ""
    rejected: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, mask: np.ndarray) -> LabelledTexts:
        idx = np.flatnonzero(mask)
        return LabelledTexts(
            tuple(self.texts[i] for i in idx),
            tuple(self.labels[i] for i in idx),
            self.kind,
            self.source,
            self.rejected,
        )

    @staticmethod
    def concat(parts: Sequence[LabelledTexts]) -> LabelledTexts:
        """Several labelled sets as one training set (polarity labels are valid class names:
        a score file adds positive/negative rows, no neutral ones)."""
        rejected: Counter[str] = Counter()
        for part in parts:
            rejected.update({f"{Path(part.source).name}:{k}": v for k, v in part.rejected.items()})
        return LabelledTexts(
            tuple(t for part in parts for t in part.texts),
            tuple(label for part in parts for label in part.labels),
            "classes" if any(p.kind == "classes" for p in parts) else "polarity",
            "+".join(p.source for p in parts),
            rejected,
        )

    def sha256(self) -> str:
        """Hash of exactly the rows used (text and label), in order."""
        h = hashlib.sha256()
        for text, label in zip(self.texts, self.labels, strict=True):
            h.update(f"{text}\t{label}\n".encode())
        return h.hexdigest()


def _pick(header: Sequence[str], candidates: Sequence[str]) -> str | None:
    return next((c for c in candidates if c in header), None)


def read_labelled_csv(path: Path | str) -> LabelledTexts:
    """Read a labelled CSV (see module doc). Raises InputError when the columns don't fit."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--data {path}: no such file")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        text_col = _pick(header, TEXT_COLUMNS)
        class_col = _pick(header, CLASS_COLUMNS)
        score_col = None if class_col else _pick(header, SCORE_COLUMNS)
        if text_col is None or (class_col is None and score_col is None):
            raise InputError(
                f"{path}: columns {header!r}: need a text column {TEXT_COLUMNS} and a label "
                f"column {CLASS_COLUMNS} or a score column {SCORE_COLUMNS}"
            )
        texts: list[str] = []
        labels: list[str] = []
        rejected: Counter[str] = Counter()
        for row in reader:
            text = (row.get(text_col) or "").strip()
            if not text:
                rejected["empty_text"] += 1
                continue
            if class_col is not None:
                label = (row.get(class_col) or "").strip().lower()
                if label not in CLASSES:
                    rejected["bad_label"] += 1
                    continue
            else:
                try:
                    value = float(row.get(score_col) or "")
                except ValueError:
                    rejected["bad_score"] += 1
                    continue
                if not math.isfinite(value) or abs(value) > 1.0:
                    rejected["bad_score"] += 1
                    continue
                if value == 0.0:
                    rejected["zero_score"] += 1
                    continue
                label = "positive" if value > 0 else "negative"
            texts.append(text)
            labels.append(label)
    kind: Literal["classes", "polarity"] = "classes" if class_col else "polarity"
    return LabelledTexts(tuple(texts), tuple(labels), kind, str(path), rejected)


def holdout_mask(data: LabelledTexts, fraction: float = 0.2) -> np.ndarray:
    """True for the held-out rows: per label, the ``fraction`` with the smallest text hash.

    Deterministic and stratified, and a text always lands on the same side whatever else is
    in the file. Duplicated texts share a side.
    """
    if not 0.0 < fraction < 1.0:
        raise InputError(f"--test-fraction={fraction!r}: must be in (0, 1)")
    digests = np.array(
        [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in data.texts], dtype=object
    )
    labels = np.asarray(data.labels, dtype=object)
    mask = np.zeros(len(data), dtype=bool)
    for label in sorted(set(data.labels)):
        idx = np.flatnonzero(labels == label)
        unique = sorted(set(digests[idx]))
        cut = set(unique[: round(fraction * len(unique))])
        mask[idx] = [d in cut for d in digests[idx]]
    return mask


def select_split(data: LabelledTexts, split: str, fraction: float = 0.2) -> LabelledTexts:
    """``all`` | ``train`` (everything but the held-out part) | ``test`` (the held-out part)."""
    if split == "all":
        return data
    if split not in ("train", "test"):
        raise InputError(f"--split={split!r}: expected all, train or test")
    mask = holdout_mask(data, fraction)
    return data.subset(mask if split == "test" else ~mask)


def classification_metrics(
    labels: Sequence[str], probs: np.ndarray, kind: Literal["classes", "polarity"]
) -> dict[str, float | int]:
    """Accuracy and macro-F1. For ``polarity`` data the prediction is the sign of the score."""
    from sklearn.metrics import accuracy_score, f1_score

    y = np.asarray(labels)
    if kind == "classes":
        pred = np.asarray(CLASSES)[probs.argmax(axis=1)]
        classes = list(CLASSES)
    else:
        score = probs[:, CLASSES.index("positive")] - probs[:, CLASSES.index("negative")]
        pred = np.where(score > 0, "positive", "negative")
        classes = ["negative", "positive"]
    return {
        "n": int(len(y)),
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "macro_f1": round(float(f1_score(y, pred, labels=classes, average="macro")), 4),
    }
