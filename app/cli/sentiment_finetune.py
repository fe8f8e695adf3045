"""``python -m app sentiment-finetune``: train the whole encoder as a 3-class classifier.

Writes a Hugging Face classifier folder to ``<registry>/sentiment_models/<version>/`` and prints
its path; point ``sentiment.model`` (or ``APP_SENTIMENT__MODEL``) at it to score news with it.
Minutes per epoch on a CPU (docs/SENTIMENT.md); uses CUDA when present.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.sentiment_train import add_training_split_args
from app.config import load_settings
from app.errors import InputError
from app.models.text_datasets import LabelledTexts, read_labelled_csv, select_split
from app.models.text_finetune import FinetuneConfig, finetune_classifier, new_version_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sentiment-finetune",
        help="fine-tune the sentence encoder into a sentiment classifier on a labelled CSV",
        description="Full fine-tuning, best epoch on a validation part (docs/SENTIMENT.md).",
    )
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        nargs="+",
        help="labelled CSVs: sentence,label (3 classes) or title/sentence + a score in [-1, 1]",
    )
    add_training_split_args(p)
    p.add_argument("--base", default="", help="local model folder or cached id (default: MiniLM)")
    defaults = FinetuneConfig()
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--max-length", type=int, default=defaults.max_length)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--device", default=defaults.device, help="'auto' = CUDA when present")
    p.add_argument("--config", type=Path, help="settings TOML")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    settings = load_settings(args.config) if args.config else load_settings()
    registry_dir = args.registry or settings.registry_dir
    config = FinetuneConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        device=args.device,
    )
    files = [read_labelled_csv(path) for path in args.data]
    data = LabelledTexts.concat(files)
    # the split is taken per file, so each file's held-out part stays out of training
    train = LabelledTexts.concat([select_split(f, args.split, args.test_fraction) for f in files])
    if len(train) == 0:
        raise InputError(f"--data: no usable rows (rejected: {dict(data.rejected)})")
    out_dir = new_version_dir(registry_dir, train.sha256())
    meta = {
        "data_paths": [str(p) for p in args.data],
        "n_by_file": {Path(f.source).name: len(f) for f in files},
        "data_sha256": train.sha256(),
        "split": args.split,
        "test_fraction": args.test_fraction if args.split != "all" else None,
        "rejected": dict(data.rejected),
    }
    info = finetune_classifier(
        train,
        out_dir,
        base=args.base,
        config=config,
        meta=meta,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    return {
        "model": str(out_dir),
        "use": f"APP_SENTIMENT__MODEL={out_dir}",
        "n_train": info["n_train"],
        "n_validation": info["n_validation"],
        "best_epoch": info["best_epoch"],
        "val_accuracy": info["val_accuracy"],
        "rejected": dict(data.rejected),
        "seconds": info["seconds"],
    }
