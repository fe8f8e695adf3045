"""Sweep wall time with 1, 2 and 4 concurrent trials (the same sweep, one local Ray).

    .venv/bin/python bench/sweep.py [--days 10] [--configs 4] [--epochs 3] [--windows 1500]

Simulates a small market, starts Ray once (``num_cpus`` = the largest concurrency, so every
run has a logical CPU per trial) and warms it with a one-trial, one-epoch sweep (worker
processes, imports, the page cache), then runs the same sweep (``configs`` configurations x 1
fold, ASHA early stops off so every run does equal work) with ``max_concurrent`` = each of
``--concurrency``. Prints one JSON line: wall times, speed-up over 1 and scaling efficiency
(speed-up / concurrency). On a 2-core machine anything above 2 measures overheads, not scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

WIDTHS = [8, 12, 16, 20, 24, 28, 32, 40]


def _config(sim: Path, out: Path, args: argparse.Namespace, configs: int, concurrent: int):
    from app.tuning.sweep import SweepConfig

    return SweepConfig(
        data=[str(sim)],
        news=False,
        folds=2,
        fold_indices=[1],
        max_epochs=args.epochs,
        max_windows_per_epoch=args.windows,
        asha_grace_period=args.epochs + 2,  # no early stops: every run does equal work
        max_concurrent=concurrent,
        verbose=0,
        out=str(out),
        search={"lookback": [16], "d_model": WIDTHS[:configs], "n_layers": [1]},
    )


def _start_ray(cpus: int, attempts: int = 3) -> None:
    """``ray.init``, tried again when the raylet misses Ray's fixed 30 s start-up deadline
    (it does on this shared machine at load averages above ~15)."""
    import ray

    for attempt in range(1, attempts + 1):
        try:
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            return
        except Exception:
            ray.shutdown()
            if attempt == attempts:
                raise


def main() -> None:
    import ray

    from app.config import load_settings
    from app.sim.config import SimConfig
    from app.sim.files import write_simulation
    from app.sim.market import SimulatedMarket
    from app.tuning.sweep import run_sweep

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--days", type=int, default=10)
    p.add_argument("--configs", type=int, default=4, help=f"at most {len(WIDTHS)}")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--windows", type=int, default=1500, help="training windows per epoch")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    args = p.parse_args()
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        sim = Path(tmp) / "sim"
        write_simulation(
            SimulatedMarket(SimConfig.for_symbols(["BTCUSDT"], days=args.days)).run(), sim
        )
        t0 = time.perf_counter()
        _start_ray(max(args.concurrency))
        started = time.perf_counter() - t0
        warm = _config(sim, Path(tmp) / "warm", args, 1, 1).model_copy(
            update={"max_epochs": 1, "asha_grace_period": 3}
        )
        t0 = time.perf_counter()
        run_sweep(warm, settings)
        warmup = time.perf_counter() - t0
        walls: dict[int, float] = {}
        for n in args.concurrency:
            cfg = _config(sim, Path(tmp) / f"out{n}", args, args.configs, n)
            t0 = time.perf_counter()
            report = run_sweep(cfg, settings)
            walls[n] = time.perf_counter() - t0
            assert report["trials_finished"] == args.configs, report
        ray.shutdown()
    base = walls[args.concurrency[0]] * args.concurrency[0]
    print(
        json.dumps(
            {
                "bench": "sweep",
                "trials": args.configs,
                "epochs": args.epochs,
                "windows_per_epoch": args.windows,
                "cpus": os.cpu_count(),
                "load_average": round(os.getloadavg()[0], 1),
                "ray_init_s": round(started, 1),
                "warmup_sweep_s": round(warmup, 1),
                "wall_s": {str(n): round(w, 1) for n, w in walls.items()},
                "speedup": {str(n): round(base / w, 2) for n, w in walls.items()},
                "efficiency": {str(n): round(base / w / n, 2) for n, w in walls.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
