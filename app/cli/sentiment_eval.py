"""``python -m app sentiment-eval``: accuracy and macro-F1 of a sentiment head on a CSV.

3-class files (``sentence,label``) are scored by the arg-max class; files with a continuous
score (SemEval headlines ``title,sentiment``) by the sign of P(positive) - P(negative).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from app.config import load_settings
from app.errors import InputError
from app.models.text_datasets import classification_metrics, read_labelled_csv, select_split
from app.models.text_loader import load_sentiment_model


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sentiment-eval",
        help="accuracy / macro-F1 of the sentiment model on a labelled CSV",
        description="Prints {n, accuracy, macro_f1} as the last line (docs/SENTIMENT.md).",
    )
    p.add_argument(
        "--data", required=True, type=Path, help="CSV: sentence,label or title,sentiment"
    )
    p.add_argument(
        "--head",
        choices=("zero-shot", "current"),
        default="current",
        help="zero-shot prototypes, or the registry's current trained head (default)",
    )
    p.add_argument("--registry", type=Path, help="model registry folder (default: settings)")
    p.add_argument(
        "--split",
        choices=("all", "test", "train"),
        default="all",
        help="'test' = the held-out part that sentiment-train --split train leaves out",
    )
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out share (default 0.2)")
    p.add_argument("--device", help="torch device (default: settings, 'auto' = CUDA when present)")
    p.add_argument("--config", type=Path, help="settings TOML")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    settings = load_settings(args.config) if args.config else load_settings()
    data = select_split(read_labelled_csv(args.data), args.split, args.test_fraction)
    if len(data) == 0:
        raise InputError(f"{args.data}: no usable rows (rejected: {dict(data.rejected)})")
    started = time.perf_counter()
    model = load_sentiment_model(
        settings.sentiment,
        registry_dir=args.registry or settings.registry_dir,
        head=args.head,
        device=args.device,
    )
    metrics = classification_metrics(data.labels, model.probabilities(data.texts), data.kind)
    return {
        "data": str(args.data),
        "split": args.split,
        "head": model.head_name,
        "kind": data.kind,
        "rejected": dict(data.rejected),
        "seconds": round(time.perf_counter() - started, 2),
        **metrics,
    }
