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
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from app.config import Settings, load_settings
from app.errors import InputError
from app.models.factory import MODEL_KINDS
from app.models.registry import save_version
from app.tuning.presets import QUICK, STANDARD
from app.tuning.report import write_report, write_signals
from app.tuning.walkforward import BASELINES, WalkForwardConfig, run_walkforward
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
        help="required for CSV/store data; a simulator folder knows it",
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


def _override(obj: Any, **changes: Any) -> Any:
    return replace(obj, **{k: v for k, v in changes.items() if v is not None})


def build_config(
    args: argparse.Namespace, asset_class: AssetClass, settings: Settings
) -> WalkForwardConfig:
    preset = QUICK if args.quick else STANDARD
    spec = _override(
        preset.spec,
        kind=args.model or settings.model.kind,
        lookback=args.lookback or (None if args.quick else settings.model.lookback),
        d_model=args.d_model,
        n_layers=args.layers,
        n_heads=args.heads,
    )
    train = _override(
        preset.train,
        max_epochs=args.max_epochs,
        max_windows_per_epoch=args.max_windows,
        seed=args.seed,
    )
    costs = settings.costs
    return WalkForwardConfig(
        asset_class=asset_class,
        spec=spec,
        train=train,
        n_folds=args.folds or preset.folds,
        scheme=args.scheme,
        horizon=settings.labels.horizon,
        gate=settings.risk.confidence_gate,
        cost_bps=costs.fee_bps[asset_class] + costs.slippage_bps,
        baselines=tuple(args.baselines),
        device=args.device or settings.model.device,
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from app.features.spec import default_spec
    from app.tuning.data_loading import build_windows, load_data, load_store

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = load_settings()
    asset_class = AssetClass(args.asset_class) if args.asset_class else None
    if args.store:
        if asset_class is None:
            raise InputError("--asset-class is required with --store")
        data = load_store(
            args.store,
            args.symbols,
            asset_class,
            news_impact=not args.no_news_impact,
            settings=settings,
        )
    else:
        data = load_data(
            args.data,
            args.symbols,
            asset_class,
            news=not args.no_news,
            news_impact=not args.no_news_impact,
            settings=settings,
        )
    config = build_config(args, data.asset_class, settings)
    spec = default_spec(data.asset_class)
    windows = build_windows(data, spec, settings.labels, config.spec.lookback)
    label_dict = settings.labels.model_dump()
    result = run_walkforward(
        windows,
        config,
        oracle=data.oracle,
        label_settings=label_dict,
        feature_spec=spec.to_dict(),
        data_info=data.describe(),
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
        bars=data.bars,
        risk=settings.risk,
        costs=settings.costs,
    )
    summary = write_report(result, args.out)
    summary["signals"] = str(write_signals(result, windows, Path(args.out) / "signals.csv"))
    if args.register and result.last_model is not None:
        last = result.folds[-1]
        summary["version"] = save_version(
            args.registry or settings.registry_dir,
            result.last_model.bundle,
            metrics={
                "test": last.metrics["model"],
                "pooled": result.pooled["model"],
                "training": last.training,
            },
            data_range={
                "train": last.times["train"],
                "val": last.times["val"],
                "test": last.times["test"],
                "source": data.source,
            },
        )
    return summary
