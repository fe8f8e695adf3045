"""``python -m app models list|promote VERSION|show VERSION``: the model registry.

python -m app models [--registry runs/registry] list
python -m app models promote transformer-20260101T000000-1a2b3c4d
python -m app models show transformer-20260101T000000-1a2b3c4d
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.config import load_settings
from app.models.registry import list_versions, load_version, promoted_version, promoted_versions
from app.pipeline.promote import promote_model


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list, show and promote registered model versions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--registry", type=Path, default=None, help="default: settings.registry_dir")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="every complete version, oldest first")
    pr = sub.add_parser("promote", help="make VERSION the one the signal service serves")
    pr.add_argument("version")
    sh = sub.add_parser("show", help="config, data range and metrics of VERSION")
    sh.add_argument("version")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict[str, Any]:
    registry = args.registry or load_settings().registry_dir
    if args.action == "list":
        versions = list_versions(registry)
        for v in versions:
            dacc = v.metrics.get("pooled", v.metrics).get("dacc")
            flag = "*" if v.promoted else " "
            print(f"{flag} {v.version}  {v.kind:<11} {','.join(v.symbols):<24} dacc={dacc}")
        return {
            "registry": str(registry),
            "versions": [v.version for v in versions],
            "promoted": promoted_version(registry),  # the last promotion of any class
            "promoted_by_class": {c.value: v for c, v in promoted_versions(registry).items()},
        }
    if args.action == "promote":
        return promote_model(registry, args.version).to_dict()
    bundle = load_version(registry, args.version)
    return {
        "version": args.version,
        "kind": bundle.kind,
        "config": bundle.model_config,
        "symbols": list(bundle.symbols),
        "lookback": bundle.lookback,
        "temperature": bundle.temperature,
        "n_features": len(bundle.feature_names),
        "metrics": bundle.metrics,
    }
