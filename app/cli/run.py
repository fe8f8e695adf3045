"""``python -m app run``: the research pipeline end to end on the embedded default.

    python -m app run --workdir runs/latest            # what `make run` does
    python -m app run --workdir runs/real --data shared # replay ../shared/data instead

Steps, each the same command a user can run alone (its JSON summary is kept): train the
sentiment head on Financial PhraseBank once (when ../shared/data has it), simulate (or replay
real data) -> ingest bars into DuckDB -> ingest news / Fear & Greed / flow and score headlines
-> features from the store -> walk-forward on the simulator folder (it brings the oracle the
store does not hold: model vs baselines vs oracle, out-of-sample signals) -> risk-checked
backtest of those signals. Ends with a summary a person can read,
then the JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from app.errors import InputError

CRYPTO_REAL = "crypto_binance_spot_5m"
FPB = "sentiment_financial_phrasebank/fpb_sentences.csv"


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
    p.set_defaults(func=run)


def _step(name: str, argv: list[str], log: Callable[[str], None]) -> dict[str, Any]:
    """Run one CLI command in-process; return its JSON summary (the last stdout line)."""
    from app.cli.main import main

    log(f"[run] {name}: python -m app {' '.join(argv)}")
    started = time.perf_counter()
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(argv)
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    if code != 0 or not lines:
        raise InputError(f"step {name!r} failed with exit code {code}")
    summary = json.loads(lines[-1])
    log(f"[run] {name}: done in {time.perf_counter() - started:.1f} s")
    return summary


def _data_folder(args: argparse.Namespace, log: Callable[[str], None]) -> Path:
    if args.data == "shared":
        folder = args.shared_dir / CRYPTO_REAL
        if not folder.is_dir():
            raise InputError(f"--shared-dir: {folder} does not exist")
        return folder
    folder = args.workdir / "sim"
    _step(
        "simulate",
        [
            "simulate",
            "--out",
            str(folder),
            "--days",
            str(args.days),
            "--seed",
            str(args.seed),
            "--symbols",
            *args.symbols,
        ],
        log,
    )
    return folder


def _sentiment_head(args: argparse.Namespace, log: Callable[[str], None]) -> str:
    """Train the sentiment head on Financial PhraseBank's train split once, when it is there.

    The head is fitted on real labelled sentences (never on the simulator's headlines or their
    true sentiment) and registered in settings.registry_dir, where ingest-side and
    walkforward pick it up. Without the data the zero-shot head is used.
    """
    from app.config import load_settings
    from app.models.registry import promoted_version

    current = promoted_version(load_settings().registry_dir, "sentiment")
    if current:
        return current
    fpb = args.shared_dir / FPB
    if not args.train_sentiment or not fpb.is_file():
        log(f"[run] sentiment head: zero-shot ({fpb} not used)")
        return "zero-shot"
    summary = _step(
        "sentiment-train", ["sentiment-train", "--data", str(fpb), "--split", "train"], log
    )
    return str(summary.get("version", "trained"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    started = time.perf_counter()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    db = (work / "store.db").resolve()
    if db.exists():
        db.unlink()  # each run starts from an empty store, so its figures are its own
    store = f"duckdb:///{db}"
    head = _sentiment_head(args, log)
    data = _data_folder(args, log)
    asset_class = "crypto"
    source = "sim" if args.data == "sim" else "csv"
    ingest = _step(
        "ingest",
        [
            "ingest",
            "--source",
            source,
            "--path",
            str(data),
            "--store",
            store,
            "--asset-class",
            asset_class,
            *sum((["--symbol", s] for s in args.symbols), []),
        ],
        log,
    )
    side: dict[str, Any] = {}
    if args.data == "sim":
        side = _step(
            "ingest-side",
            ["ingest-side", "--source", "sim", "--path", str(data), "--store", store],
            log,
        )
    features = _step(
        "features",
        [
            "features",
            "--store",
            store,
            "--symbol",
            args.symbols[0],
            "--asset-class",
            asset_class,
            "--out",
            str(work / f"features_{args.symbols[0]}.parquet"),
        ],
        log,
    )
    wf_dir = work / "walkforward"
    walkforward = _step(
        "walkforward",
        [
            "walkforward",
            "--data",
            str(data),
            "--symbols",
            *args.symbols,
            "--asset-class",
            asset_class,
            "--model",
            args.model,
            "--folds",
            str(args.folds),
            "--quick",
            "--out",
            str(wf_dir),
            "--register",
        ],
        log,
    )
    signals = wf_dir / "signals.csv"
    bt_dir = work / "backtest"
    backtest = _step(
        "backtest",
        [
            "backtest",
            "--prices",
            str(data),
            "--signals",
            str(signals),
            "--asset-class",
            asset_class,
            "--out",
            str(bt_dir),
        ],
        log,
    )
    confidence = pd.read_csv(signals, usecols=["confidence"])["confidence"]
    summary = {
        "workdir": str(work),
        "data": args.data,
        "symbols": args.symbols,
        "bars_written": ingest.get("rows_written"),
        "feature_columns": features.get("columns"),
        "dacc": walkforward.get("dacc"),
        "baselines": walkforward.get("baselines"),
        "oracle_dacc": walkforward.get("oracle_dacc"),
        "model_version": walkforward.get("version"),
        "sentiment_head": head,
        "backtest": {
            k: backtest.get(k)
            for k in ("total_return", "sharpe", "max_drawdown", "n_trades", "final_equity")
        },
        "signals": int(confidence.size),
        "max_confidence": float(confidence.max()) if confidence.size else None,
        "hold_reasons": backtest.get("hold_reasons"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    _print_readable(summary, side, wf_dir, bt_dir)
    return summary


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _print_readable(summary: dict[str, Any], side: dict, wf_dir: Path, bt_dir: Path) -> None:
    """A short human summary on stdout, before the JSON line."""
    baselines = summary["baselines"] or {}
    lines = [
        "",
        f"Main job finished in {summary['seconds']} s ({summary['data']} data, "
        f"{', '.join(summary['symbols'])}).",
        f"  bars in the store:      {summary['bars_written']}",
        f"  side inputs ingested:   {side.get('rows_written', 'n/a')}",
        f"  feature columns:        {summary['feature_columns']}",
        f"  walk-forward DACC:      model {_fmt(summary['dacc'])}  |  oracle "
        f"{_fmt(summary['oracle_dacc'])}  |  "
        + "  ".join(f"{k} {_fmt(v)}" for k, v in baselines.items()),
        f"  sentiment head:         {summary['sentiment_head']}",
        f"  registered model:       {summary['model_version']}",
        "  risk-checked backtest:  "
        + "  ".join(f"{k} {_fmt(v)}" for k, v in summary["backtest"].items()),
        f"  out-of-sample signals:  {summary['signals']} (max confidence "
        f"{_fmt(summary['max_confidence'])}; risk holds: {summary['hold_reasons']})",
        f"  reports: {wf_dir / 'report.md'}  {bt_dir / 'metrics.json'}",
        "",
    ]
    print("\n".join(lines))
