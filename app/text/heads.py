"""Sentiment heads on sentence embeddings, and their place in the model registry.

A head turns L2-normalised embeddings ``(n, d)`` into class probabilities ``(n, 3)`` in the
order of :data:`CLASSES`. Two kinds exist: a zero-shot head (cosine similarity to centroids of
written prototype phrases, no labelled data needed) and a multinomial logistic regression
fitted on frozen embeddings. Trained heads live in ``<registry>/sentiment/<version>/`` with a
``current`` pointer, so a serving process picks up a newly trained head without code changes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
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


# --------------------------------------------------------------------------- registry

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def new_version_name(root: Path, data_sha256: str) -> str:
    """``<UTC stamp>-<data hash[:8]>``, with ``-2``, ``-3``... when ``root`` already has it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    tag = data_sha256[:8] or "nodata"
    version, suffix = f"{stamp}-{tag}", 1
    while (root / version).exists():
        suffix += 1
        version = f"{stamp}-{tag}-{suffix}"
    return version


class HeadRegistry:
    """Trained heads under ``<root>/sentiment/<version>/{head.npz, meta.json}`` + ``current``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root) / "sentiment"

    @property
    def pointer(self) -> Path:
        return self.root / "current"

    def current_version(self) -> str | None:
        if not self.pointer.is_file():
            return None
        version = self.pointer.read_text(encoding="utf-8").strip()
        return version or None

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "head.npz").is_file())

    def save(
        self, head: LogisticHead, meta: Mapping[str, Any], *, make_current: bool = True
    ) -> str:
        """Write a new version (never overwrites one) and point ``current`` at it."""
        version = new_version_name(self.root, str(meta.get("data_sha256", "")))
        folder = self.root / version
        folder.mkdir(parents=True)
        np.savez(folder / "head.npz", coef=head.coef, intercept=head.intercept)
        full_meta = {"version": version, "classes": list(CLASSES), "dim": head.dim, **meta}
        (folder / "meta.json").write_text(json.dumps(full_meta, indent=2, default=str), "utf-8")
        if make_current:
            self.set_current(version)
        return version

    def set_current(self, version: str) -> None:
        if not (self.root / version / "head.npz").is_file():
            raise InputError(f"version={version!r}: no head in {self.root}")
        tmp = self.pointer.with_suffix(".tmp")
        tmp.write_text(version + "\n", encoding="utf-8")
        os.replace(tmp, self.pointer)  # atomic: a reader sees the old or the new pointer

    def load(self, version: str | None = None) -> LogisticHead:
        """Load ``version`` (default: the current one)."""
        version = version or self.current_version()
        if version is None:
            raise InputError(
                f"registry={self.root}: no trained sentiment head (run sentiment-train)"
            )
        if not _VERSION_RE.match(version):
            raise InputError(f"version={version!r}: not a valid version name")
        folder = self.root / version
        try:
            arrays = np.load(folder / "head.npz")
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise InputError(f"version={version!r}: incomplete head folder {folder}") from exc
        if list(meta.get("classes", [])) != list(CLASSES):
            raise InputError(f"{folder}/meta.json classes={meta.get('classes')!r}: want {CLASSES}")
        return LogisticHead(
            coef=arrays["coef"], intercept=arrays["intercept"], version=version, meta=meta
        )
