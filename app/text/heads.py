"""Sentiment heads on sentence embeddings: zero-shot prototypes and a fitted logistic regression.

A head turns L2-normalised embeddings ``(n, d)`` into class probabilities ``(n, 3)`` in the
order of :data:`CLASSES`. Two kinds exist: a zero-shot head (cosine similarity to centroids of
written prototype phrases, no labelled data needed) and a multinomial logistic regression
fitted on frozen embeddings. Trained heads are stored by the model registry
(``app.models.registry``, kind ``sentiment``), whose promoted head a serving process picks up
without code changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from app.errors import InputError

# Alphabetical, which is also the order scikit-learn gives string classes.
CLASSES: tuple[str, str, str] = ("negative", "neutral", "positive")
NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def polarity(probs: np.ndarray) -> np.ndarray:
    """Score in [-1, 1]: P(positive) - P(negative)."""
    return np.clip(probs[:, POSITIVE] - probs[:, NEGATIVE], -1.0, 1.0)


class SentimentHead(Protocol):
    name: str

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, d) normalised embeddings -> (n, 3) probabilities in CLASSES order."""
        ...


@dataclass(frozen=True)
class ZeroShotHead:
    """Softmax over cosine similarity to class centroids, sharpened by a temperature.

    Cosine similarities between a headline and the three centroids differ by a few hundredths,
    so a small temperature (0.05) is what turns them into usable probabilities.
    """

    centroids: np.ndarray  # (3, d), rows L2-normalised, CLASSES order
    temperature: float = 0.05
    name: str = "zero-shot"

    def __post_init__(self) -> None:
        if self.centroids.ndim != 2 or self.centroids.shape[0] != len(CLASSES):
            raise InputError(f"ZeroShotHead.centroids shape={self.centroids.shape}: want (3, d)")
        if not self.temperature > 0:
            raise InputError(f"ZeroShotHead.temperature={self.temperature!r}: must be > 0")

    @classmethod
    def from_prototypes(
        cls, embeddings_by_class: Mapping[str, np.ndarray], temperature: float = 0.05
    ) -> ZeroShotHead:
        rows = []
        for label in CLASSES:
            emb = embeddings_by_class.get(label)
            if emb is None or len(emb) == 0:
                raise InputError(f"prototypes[{label!r}]: no example phrases")
            centroid = np.asarray(emb, dtype=np.float64).mean(axis=0)
            rows.append(centroid / np.linalg.norm(centroid))
        return cls(np.stack(rows), temperature)

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(
            np.asarray(embeddings, dtype=np.float64) @ self.centroids.T / self.temperature
        )


@dataclass(frozen=True)
class LogisticHead:
    """Multinomial logistic regression: softmax(X @ coef.T + intercept)."""

    coef: np.ndarray  # (3, d), CLASSES order
    intercept: np.ndarray  # (3,)
    name: str = "trained"
    version: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.coef.ndim != 2 or self.coef.shape[0] != len(CLASSES):
            raise InputError(f"LogisticHead.coef shape={self.coef.shape}: want (3, d)")
        if self.intercept.shape != (len(CLASSES),):
            raise InputError(f"LogisticHead.intercept shape={self.intercept.shape}: want (3,)")

    @property
    def dim(self) -> int:
        return int(self.coef.shape[1])

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float64)
        if x.shape[1] != self.dim:
            raise InputError(f"embedding dim={x.shape[1]}: this head was trained on dim={self.dim}")
        return softmax(x @ self.coef.T + self.intercept)


C_GRID: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0, 30.0)


def fit_logistic_head(
    embeddings: np.ndarray, labels: Sequence[str], *, c: float | None = None, seed: int = 0
) -> LogisticHead:
    """Fit a multinomial logistic regression on frozen embeddings (all three classes needed).

    With ``c=None`` the inverse regularisation strength is picked from :data:`C_GRID` on a
    stratified 20 % validation part of the given (training) rows; the final fit uses them all.
    BLAS runs single-threaded here: on a small matrix extra threads only fight for the cores.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    y = np.asarray(labels)
    missing = sorted(set(CLASSES) - set(y.tolist()))
    if missing:
        raise InputError(f"label: training data has no rows of class {missing}")
    unknown = sorted(set(y.tolist()) - set(CLASSES))
    if unknown:
        raise InputError(f"label={unknown[0]!r}: expected one of {CLASSES}")
    x = np.asarray(embeddings, dtype=np.float64)
    with threadpool_limits(limits=1):
        if c is None:
            x_fit, x_val, y_fit, y_val = train_test_split(
                x, y, test_size=0.2, stratify=y, random_state=seed
            )
            scores = [
                LogisticRegression(C=grid_c, max_iter=2000).fit(x_fit, y_fit).score(x_val, y_val)
                for grid_c in C_GRID
            ]
            c = float(C_GRID[int(np.argmax(scores))])
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        clf.fit(x, y)
    order = [list(clf.classes_).index(label) for label in CLASSES]
    return LogisticHead(
        coef=clf.coef_[order].copy(), intercept=clf.intercept_[order].copy(), meta={"C": c}
    )
