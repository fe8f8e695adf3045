"""``python -m app run``: the research pipeline end to end on the embedded default.

    python -m app run --workdir runs/latest            # what `make run` does
    python -m app run --workdir runs/real --data shared # replay ../shared/data instead

Steps (app.pipeline.research.research_run, each the typed call its own command makes):
train the sentiment head on Financial PhraseBank once (when ../shared/data has it),
simulate (or replay real data) -> ingest bars into DuckDB -> ingest news / Fear & Greed /
flow and score headlines -> features from the store -> walk-forward trained from the store
(the simulator folder brings the oracle the store does not hold: model vs baselines vs
oracle, out-of-sample signals) -> risk-checked backtest of those signals. Ends with a
summary a person can read, then the JSON line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.config import load_settings
from app.pipeline.research import CRYPTO_REAL, ResearchOptions, research_run


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="the main job: data -> store -> features -> walk-forward -> risk-checked backtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workdir", type=Path, default=Path("runs/latest"), help="output folder")
    p.add_argument(
        "--data",
        choices=["sim", "shared"],
        default="sim",
        help="sim: the seeded simulator (all modalities + oracle); shared: replay the real "
        f"{CRYPTO_REAL} files from --shared-dir",
    )
    p.add_argument("--shared-dir", type=Path, default=Path("../shared/data"))
    p.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT"])
    p.add_argument("--days", type=int, default=45, help="simulated days")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--model", choices=["transformer", "lstm"], default="transformer")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument(
        "--no-train-sentiment",
        dest="train_sentiment",
        action="store_false",
        help="keep the zero-shot sentiment head even when Financial PhraseBank is there",
    )
    p.add_argument(
        "--live-seconds",
        type=float,
        default=60.0,
        help="then paper-trade the model's unseen test window for at most this long (0: skip)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict[str, Any]:
    options = ResearchOptions(
        workdir=args.workdir,
        data=args.data,
        shared_dir=args.shared_dir,
        symbols=tuple(args.symbols),
        days=args.days,
        seed=args.seed,
        model=args.model,
        folds=args.folds,
        train_sentiment=args.train_sentiment,
    )
    settings = load_settings()
    result = research_run(settings, options, log=_log)
    print(result.readable())
    out = result.to_dict()
    if options.data == "sim" and args.live_seconds > 0:
        out["live"] = _live_step(settings, result, args.live_seconds)
    return out


def _live_step(settings: Any, result: Any, seconds: float) -> dict[str, Any]:
    """The paper worker on the bars the model never saw (app/worker.py)."""
    from app.worker_research import readable, research_live_step

    work = result.options.workdir
    _log("[run] live (paper replay of the test window)")
    summary = research_live_step(
        settings, work / "sim", result.walkforward.version, work / "live", duration_s=seconds
    )
    print(readable(summary))
    return summary


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
