"""``python -m app sentiment-train``: fit the sentiment head on labelled sentences.

The encoder stays frozen; a multinomial logistic regression is fitted on its embeddings and
saved as a new version in ``<registry>/sentiment/`` with the ``current`` pointer moved to it,
so every later ``SentimentModel.load(registry_dir=...)`` uses it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from app.config import load_settings
from app.errors import InputError
from app.models.registry import save_head
from app.models.text_datasets import classification_metrics, read_labelled_csv, select_split
from app.text.heads import fit_logistic_head
from app.text.sentiment import SentimentModel


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sentiment-train",
        help="fit the sentiment head on a labelled CSV (sentence,label) and register it",
        description="Frozen embeddings + logistic regression (docs/SENTIMENT.md).",
    )
    p.add_argument("--data", required=True, type=Path, help="CSV with columns sentence,label")
    add_training_split_args(p)
    p.add_argument(
        "--c", type=float, help="inverse regularisation (default: chosen on a validation part)"
    )
    p.add_argument("--device", help="torch device (default: settings, 'auto' = CUDA when present)")
    p.add_argument("--config", type=Path, help="settings TOML")
    p.set_defaults(func=run)


def add_training_split_args(p: argparse.ArgumentParser) -> None:
    """--registry, --split and --test-fraction, shared with ``sentiment-finetune``."""
    p.add_argument("--registry", type=Path, help="model registry folder (default: settings)")
    p.add_argument(
        "--split",
        choices=("all", "train"),
        default="all",
        help="'train' leaves out the deterministic held-out part (see sentiment-eval --split test)",
    )
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out share (default 0.2)")


def run(args: argparse.Namespace) -> dict:
    settings = load_settings(args.config) if args.config else load_settings()
    registry_dir = args.registry or settings.registry_dir
    if args.c is not None and not args.c > 0:
        raise InputError(f"--c={args.c!r}: must be > 0")
    data = read_labelled_csv(args.data)
    if data.kind != "classes":
        raise InputError(f"{args.data}: training needs a label column (positive/neutral/negative)")
    train = select_split(data, args.split, args.test_fraction)
    if len(train) == 0:
        raise InputError(f"{args.data}: no usable rows (rejected: {dict(data.rejected)})")
    started = time.perf_counter()
    model = SentimentModel.load(settings.sentiment, head="zero-shot", device=args.device)
    if model.kind != "embedding":
        raise InputError(
            f"sentiment.model={settings.sentiment.model!r} is a classifier; heads are for "
            "embedding models"
        )
    embeddings = model.embed(train.texts)
    head = fit_logistic_head(embeddings, train.labels, c=args.c)
    train_metrics = classification_metrics(train.labels, head.predict_proba(embeddings), "classes")
    meta = {
        "encoder": model.encoder.name,
        "data_path": str(args.data),
        "data_sha256": train.sha256(),
        "split": args.split,
        "test_fraction": args.test_fraction if args.split != "all" else None,
        "n": len(train),
        "rejected": dict(data.rejected),
        "C": head.meta["C"],
        "train_metrics": train_metrics,
    }
    version = save_head(registry_dir, head, meta)
    return {
        "version": version,
        "registry": str(Path(registry_dir) / "sentiment" / version),
        "n": len(train),
        "rejected": dict(data.rejected),
        "C": head.meta["C"],
        "train_accuracy": train_metrics["accuracy"],
        "seconds": round(time.perf_counter() - started, 2),
    }
