"""``python -m app``: dispatch to the command modules.

Contract for every command: the last line of stdout is a one-line JSON summary; errors go to
stderr as one line naming the file/field/value at fault, exit code 2 for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from app.errors import InputError
from app.types import InvalidField

# Each name is a module in app/cli/ defining register(subparsers) and run(args) -> dict.
COMMANDS: tuple[str, ...] = (
    "run",
    "simulate",
    "ingest",
    "features",
    "backtest",
    "walkforward",
    "models",
    "sentiment-train",
    "sentiment-finetune",
    "sentiment-eval",
    "ingest-side",
    "rl",  # rl-train, rl-eval (app/cli/rl.py)
    "panel",
    "broker",
    "predict",
    "live",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Multi-modal 5-minute direction prediction with a deterministic risk layer.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"app.cli.{name.replace('-', '_')}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = args.func(args)
    except (InputError, InvalidField, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(summary, default=str, sort_keys=False))
    return int(summary.get("exit_code", 0)) if isinstance(summary, dict) else 0
