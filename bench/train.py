"""Training throughput: the full training loop (window gathering, batching, AdamW, clipping)
against a bare forward/backward/step of the same model on one pre-built batch.

    .venv/bin/python bench/train.py [--kind transformer|lstm] [--preset quick|standard]
        [--threads N] [--windows 4096]

Prints one JSON line: windows/s for both and their ratio (the loop's overhead).
``--ensemble N`` adds the wall time of ``fit_model`` (skip-path start, training, calibration)
with 1 and with N seeds on the same windows, and their ratio (the seed ensemble's cost).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch

from app.config import LabelSettings
from app.models.dataset import WindowSet, label_series
from app.models.factory import build_model, model_config_for
from app.models.train import ModelSpec, TrainConfig, fit_model, resolve_device, train_classifier
from app.tuning.presets import QUICK, STANDARD


def synthetic_windows(rows: int, n_features: int, lookback: int) -> WindowSet:
    rng = np.random.default_rng(0)
    ts = (
        pd.date_range("2025-01-01", periods=rows, freq="5min", tz="UTC")
        .astype("datetime64[ns, UTC]")
        .asi8
    )
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, rows)))
    x = rng.normal(size=(rows, n_features)).astype(np.float32)
    s = label_series("SYN", ts, close, close, x, LabelSettings(sigma_window=50))
    return WindowSet([s], lookback)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kind", default="transformer", choices=["transformer", "lstm"])
    p.add_argument("--preset", default="quick", choices=["quick", "standard"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--windows", type=int, default=4096, help="training windows per epoch")
    p.add_argument("--features", type=int, default=41)
    p.add_argument("--device", default="auto")
    p.add_argument("--ensemble", type=int, default=0, help="also time fit_model with N seeds")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    preset = QUICK if args.preset == "quick" else STANDARD
    spec = preset.spec
    w = synthetic_windows(args.windows * 2 + spec.lookback + 10, args.features, spec.lookback)
    ends = w.labeled_ends()
    train_ends, val_ends = ends[: args.windows], ends[args.windows : args.windows + 512]
    cfg = model_config_for(
        args.kind,
        n_features=args.features,
        lookback=spec.lookback,
        d_model=spec.d_model,
        n_layers=spec.n_layers,
        n_heads=spec.n_heads,
        dropout=spec.dropout,
    )
    train_cfg = TrainConfig(max_epochs=2, batch_size=preset.train.batch_size, patience=99)

    # full loop: 2 epochs over `windows` windows (windows/s measured on the training passes)
    model = build_model(args.kind, cfg)
    _, _, _, loop_wps = train_classifier(model, w, w.X, train_ends, val_ends, train_cfg, device)

    # bare: the same number of optimizer steps on one pre-gathered batch already on the device
    model = build_model(args.kind, cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    b = train_cfg.batch_size
    x = torch.from_numpy(w.gather(train_ends[:b])).to(device)
    y = torch.from_numpy(w.y[train_ends[:b]]).to(device)
    steps = 2 * int(np.ceil(args.windows / b))
    model.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    bare_wps = steps * b / (time.perf_counter() - t0)

    fit_s = {}
    if args.ensemble > 1:
        mspec = ModelSpec(
            kind=args.kind,
            lookback=spec.lookback,
            d_model=spec.d_model,
            n_layers=spec.n_layers,
            n_heads=spec.n_heads,
        )
        for n in (1, args.ensemble):
            cfg_n = TrainConfig(max_epochs=2, batch_size=b, patience=99, ensemble=n)
            t0 = time.perf_counter()
            fit_model(w, train_ends, val_ends, mspec, cfg_n, device)
            fit_s[n] = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "bench": "train",
                "kind": args.kind,
                "preset": args.preset,
                "device": str(device),
                "threads": args.threads,
                "lookback": spec.lookback,
                "d_model": spec.d_model,
                "n_layers": spec.n_layers,
                "features": args.features,
                "batch": b,
                "loop_windows_per_s": round(loop_wps, 1),
                "bare_windows_per_s": round(bare_wps, 1),
                "loop_vs_bare": round(loop_wps / bare_wps, 3),
                **{f"fit_s_ensemble_{n}": round(v, 2) for n, v in fit_s.items()},
                **(
                    {"ensemble_cost_ratio": round(fit_s[args.ensemble] / fit_s[1], 2)}
                    if fit_s
                    else {}
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
