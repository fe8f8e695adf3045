"""``python -m app predict``: one registry version over a whole series, written as signals.csv.

The batch counterpart of ``live``: the same model, features and signal mapping, in one pass
(app/pipeline/predict.py). ``--data`` takes a ``<SYMBOL>_5m.csv`` file, a folder of them
(``--asset-class``), or a simulator folder; ``--store URL --symbols ...`` reads the store.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.config import load_settings
from app.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="signals of a model version over a whole series (signals.csv)"
    )
    p.add_argument("--version", required=True, help="registry version (or 'promoted')")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="CSV file, folder of CSVs, or simulator folder")
    src.add_argument("--store", metavar="URL", help="read bars and side inputs from the store")
    p.add_argument("--symbols", nargs="*", default=[], help="symbols (required with --store)")
    p.add_argument("--asset-class", choices=["crypto", "stocks", "forex"])
    p.add_argument("--out", type=Path, required=True, help="signals CSV to write")
    p.add_argument("--config", type=Path, help="settings TOML")
    p.add_argument("--registry", type=Path, help="registry folder (default from settings)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from app.live.replay import load_replay
    from app.live.window_spec import WindowSpec
    from app.models.registry import load_version, promoted_version
    from app.pipeline.predict import predict_inputs, predict_signals

    settings = load_settings(args.config) if args.config else load_settings()
    registry = args.registry or Path(settings.registry_dir)
    version = args.version
    if version == "promoted":
        version = promoted_version(registry)
        if version is None:
            raise InputError(f"--version promoted: registry {registry} has no promoted version")
    bundle = load_version(registry, version)
    window = WindowSpec.from_bundle(bundle)
    asset_class = args.asset_class or window.spec.asset_class.value
    if args.store and not args.symbols:
        raise InputError("--symbols is required with --store")
    data = load_replay(args.store or args.data, asset_class, args.symbols or None)
    text_model = None
    if data.news:
        from app.models.text_loader import cached_sentiment_model

        text_model = cached_sentiment_model(settings.sentiment, registry)
    inputs = predict_inputs(
        data, asset_class, text_model, embeddings=window.impact_model is not None
    )
    result = predict_signals(bundle, inputs, model_version=version)
    out = result.write_csv(args.out)
    return {"command": "predict", "out": str(out), **result.to_dict()}
