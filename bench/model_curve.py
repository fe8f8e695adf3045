"""DACC against training epochs (and lookback, width, stopping rule, ensemble size) on one data
set, with the walk-forward's own folds: the measured curve the presets are chosen from.

    python bench/model_curve.py --data runs/sim11 --lookback 16 32 --epochs 8 \\
        --max-windows 6000 --kind transformer --threads 1 --out runs/curve.json

The data and features are built once; every configuration then runs every fold through
``app.tuning.walkforward.run_fold`` (the code ``walkforward`` runs), with a callback that
scores the test block after every epoch. Test scores are recorded for the curve only; the
models are still selected on validation. Prints one JSON line per configuration: pooled test
DACC after each epoch (epoch 0 = the skip path's logistic-regression start), the epoch each
stopping rule picks per fold, the pooled DACC of the selected model, logistic regression,
LightGBM and the oracle, the binomial SE and the wall time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from app.config import load_settings
from app.features.spec import default_spec
from app.labels import dacc
from app.models.dataset import FeatureScaler, class_weights
from app.models.train import ModelSpec, TrainConfig, predict_logits, prior_correction
from app.pipeline.walkforward import WalkForwardOptions, build_config, load_walkforward_data
from app.tuning.data_loading import build_windows
from app.tuning.splits import fold_times
from app.tuning.walkforward import folds_for, run_fold


def run_config(windows, data, wf, baselines):
    """Every fold of one configuration; per-epoch pooled test DACC and the final scores."""
    folds, grid = folds_for(windows, wf)
    wf = replace(wf, baselines=baselines, event_backtest=())
    per_epoch: dict[int, list[np.ndarray]] = {}
    outcomes, picks, fold_logits = [], [], []
    for fold in folds:
        ft = fold_times(fold, grid)
        train = windows.labeled_ends(*ft.train)
        test = windows.labeled_ends(*ft.test)
        state = {}

        def on_epoch(row, model, train=train, test=test, state=state):
            if "x" not in state:  # after fill_news_impact: the fold's own columns
                scaler = FeatureScaler.fit(windows.X[windows.covered_rows(train)])
                state["x"] = scaler.transform(windows.X)
                state["bias"] = prior_correction(class_weights(windows.y[train]))
            logits = predict_logits(model, windows, state["x"], test, torch.device("cpu"))
            per_epoch.setdefault(int(row["epoch"]), []).append(logits + state["bias"])
            model.train()

        n_before = {e: len(v) for e, v in per_epoch.items()}
        out = run_fold(windows, fold, grid, wf, data.oracle, on_epoch=on_epoch)
        outcomes.append(out)
        mine = {
            e: v[n_before.get(e, 0)] for e, v in per_epoch.items() if len(v) > n_before.get(e, 0)
        }
        if "logreg" in out.probs:  # epoch 0 is the logistic regression (tested)
            mine[0] = np.log(out.probs["logreg"] + 1e-12)
        fold_logits.append(mine)
        hist = [h for h in out.result.history if h.get("member", 0.0) == 0.0]
        picks.append(
            {
                "best_epoch": out.training["best_epoch"],
                "by_loss": int(max(hist, key=lambda h: -h["val_loss_cal"])["epoch"]),
                "by_dacc": int(max(hist, key=lambda h: h["val_dacc"])["epoch"]),
                "val": [[round(h["val_dacc"], 4), round(h["val_loss_cal"], 5)] for h in hist],
            }
        )
    ends = np.concatenate([o.test_ends for o in outcomes])
    r = windows.r[ends]
    curve = {
        e: round(dacc(np.concatenate(v)[:, 0], np.concatenate(v)[:, 1], r), 4)
        for e, v in sorted(per_epoch.items())
        if len(v) == len(outcomes)
    }
    pooled = {}
    for rule in ("by_loss", "by_dacc"):  # each rule's pick per fold, pooled over folds
        chosen = [fl.get(pk[rule]) for fl, pk in zip(fold_logits, picks, strict=True)]
        if all(c is not None for c in chosen):
            c = np.concatenate(chosen)
            pooled[f"pick_{rule}"] = round(dacc(c[:, 0], c[:, 1], r), 4)
    for name in outcomes[0].probs:
        p = np.concatenate([o.probs[name] for o in outcomes])
        pooled[name] = round(dacc(p[:, 0], p[:, 1], r), 4)
    n = int(np.sum(np.isfinite(r) & (r != 0)))
    se = float(np.sqrt(pooled["model"] * (1 - pooled["model"]) / n))
    return curve, picks, pooled, se, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", required=True)
    p.add_argument("--kind", nargs="+", default=["transformer"])
    p.add_argument("--lookback", type=int, nargs="+", default=[32])
    p.add_argument("--d-model", type=int, nargs="+", default=[16])
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--patience", type=int, default=99, help="99 = run every epoch (the curve)")
    p.add_argument("--max-windows", type=int, default=6000)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--stop-on", nargs="+", default=["loss"], choices=["loss", "dacc"])
    p.add_argument("--skip-lr-scale", type=float, nargs="+", default=[1.0])
    p.add_argument("--no-skip", action="store_true", help="the old model: no linear path")
    p.add_argument("--ensemble", type=int, nargs="+", default=[1])
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--no-news", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="append the JSON lines here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    settings = load_settings()
    data = load_walkforward_data(settings, paths=[args.data], news=not args.no_news)
    spec = default_spec(data.asset_class)
    options = WalkForwardOptions(quick=True, folds=args.folds)
    base = build_config(settings, options, data.asset_class)
    for lookback in args.lookback:
        windows = build_windows(data, spec, settings.labels, lookback)
        first = True
        grid = itertools.product(
            args.kind, args.d_model, args.stop_on, args.skip_lr_scale, args.ensemble
        )
        for kind, d_model, stop_on, skip_lr, ens in grid:
            mspec = ModelSpec(
                kind=kind,
                lookback=lookback,
                d_model=d_model,
                n_layers=args.layers,
                n_heads=args.heads,
            )
            tcfg = TrainConfig(
                max_epochs=args.epochs,
                batch_size=256,
                lr=args.lr,
                patience=args.patience,
                max_windows_per_epoch=args.max_windows,
                stop_on=stop_on,
                skip_lr_scale=skip_lr,
                linear_init=not args.no_skip,
                ensemble=ens,
                seed=args.seed,
            )
            if args.no_skip:
                mspec = replace(mspec, skip=False)
            wf = replace(base, spec=mspec, train=tcfg, device="cpu", seed=args.seed)
            t0 = time.perf_counter()
            baselines = ("logreg", "lightgbm") if first else ("logreg",)
            curve, picks, pooled, se, n = run_config(windows, data, wf, baselines)
            first = False
            row = {
                "data": args.data,
                "kind": kind,
                "lookback": lookback,
                "d_model": d_model,
                "layers": args.layers,
                "max_windows": args.max_windows,
                "stop_on": stop_on,
                "skip_lr_scale": skip_lr,
                "skip": not args.no_skip,
                "ensemble": ens,
                "seed": args.seed,
                "test_dacc_by_epoch": curve,
                "picks": picks,
                "pooled": pooled,
                "se": round(se, 4),
                "n_directional": n,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(json.dumps(row), flush=True)
            if args.out is not None:
                with args.out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
