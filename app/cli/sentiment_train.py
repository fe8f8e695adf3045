"""``python -m app sentiment-train``: fit the sentiment head on labelled sentences.

The encoder stays frozen; a multinomial logistic regression is fitted on its embeddings and
saved as a new version in ``<registry>/sentiment/`` with the ``current`` pointer moved to it,
so every later ``load_sentiment_model(registry_dir=...)`` uses it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.config import load_settings
from app.pipeline.sentiment import train_sentiment


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
    result = train_sentiment(
        settings,
        args.data,
        split=args.split,
        test_fraction=args.test_fraction,
        c=args.c,
        device=args.device,
        registry_dir=args.registry,
    )
    return result.to_dict()
