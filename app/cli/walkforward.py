"""``python -m app walkforward``: walk-forward evaluation of a model against baselines.

    python -m app walkforward --data runs/sim --model transformer --folds 3 --quick --out runs/wf
    python -m app walkforward --data ../shared/data/crypto_binance_spot_5m --symbols BTCUSDT \\
        --asset-class crypto --model lstm --folds 5 --out runs/wf_btc
    python -m app walkforward --store duckdb:///runs/store.db --symbols BTCUSDT ETHUSDT \\
        --asset-class crypto --model transformer --folds 4 --out runs/wf_store

Writes report.json and report.md into --out and prints the summary JSON last.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from app.config import load_settings
from app.models.factory import MODEL_KINDS
from app.pipeline.walkforward import WalkForwardOptions, load_walkforward_data, walk_forward
from app.store import open_store
from app.tuning.walkforward import BASELINES
from app.types import AssetClass


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "walkforward",
        help="walk-forward evaluation: model vs baselines (and the simulator's oracle)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--store", metavar="URL", help="read bars and side inputs from the store")
    src.add_argument(
        "--data",
        nargs="+",
        metavar="PATH",
        help="OHLCV CSV files, a folder of <SYMBOL>_5m.csv, or a simulator folder",
    )
    p.add_argument("--symbols", nargs="*", default=[], help="symbols (default: all found)")
    p.add_argument(
        "--asset-class",
        choices=[c.value for c in AssetClass],
        help="required for CSV data; the store and a simulator folder know it (and must "
        "agree with it)",
    )
    p.add_argument("--model", choices=MODEL_KINDS, default=None, help="default: settings")
    p.add_argument("--folds", type=int, default=None)
    p.add_argument("--scheme", choices=["expanding", "rolling"], default="expanding")
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument(
        "--max-windows", type=int, default=None, help="training windows sampled per epoch (0 = all)"
    )
    p.add_argument("--lookback", type=int, default=None)
    p.add_argument("--d-model", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="small preset (20k bars < 3 min, 2 CPUs)")
    p.add_argument(
        "--ensemble",
        type=int,
        default=None,
        metavar="N",
        help="train N seeds per fold, average their logits, calibrate once (default: preset)",
    )
    p.add_argument(
        "--stop-on",
        choices=["loss", "dacc"],
        default=None,
        help="early stopping on validation log loss (calibrated) or DACC (default: preset)",
    )
    p.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=BASELINES)
    p.add_argument(
        "--no-news",
        action="store_true",
        help="skip scoring simulator headlines (news features stay neutral)",
    )
    p.add_argument(
        "--no-news-impact",
        action="store_true",
        help="leave out the fold-fitted news-impact columns (docs/FEATURES.md)",
    )
    p.add_argument("--device", default=None, help="auto|cpu|cuda (default: settings)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--register", action="store_true", help="store the last fold's model in the registry"
    )
    p.add_argument("--registry", type=Path, default=None, help="default: settings.registry_dir")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = load_settings()
    asset_class = AssetClass(args.asset_class) if args.asset_class else None
    store = open_store(args.store) if args.store else None
    try:
        data = load_walkforward_data(
            settings,
            store=store,
            paths=args.data or (),
            symbols=args.symbols,
            asset_class=asset_class,
            news=not args.no_news,
            news_impact=not args.no_news_impact,
        )
    finally:
        if store is not None:
            store.close()
    options = WalkForwardOptions(
        model=args.model,
        folds=args.folds,
        scheme=args.scheme,
        max_epochs=args.max_epochs,
        max_windows=args.max_windows,
        lookback=args.lookback,
        d_model=args.d_model,
        layers=args.layers,
        heads=args.heads,
        quick=args.quick,
        baselines=tuple(args.baselines),
        device=args.device,
        seed=args.seed,
        ensemble=args.ensemble,
        stop_on=args.stop_on,
    )
    result = walk_forward(
        settings,
        data,
        options,
        Path(args.out),
        register=args.register,
        registry=args.registry,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    return result.to_dict()
