"""Sweep wall time with 1 vs 2 parallel trials (same tiny sweep, local Ray).

    .venv/bin/python bench/sweep.py [--days 10] [--configs 4] [--epochs 3]

Simulates a small market, then runs the same sweep (``configs`` configurations x 1 fold)
with max_concurrent = 1 and then 2; prints one JSON line with both wall times and the
speed-up. Ray start-up is inside each measurement (it is part of what a user waits for).
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


def main() -> None:
    import ray

    from app.config import load_settings
    from app.sim.config import SimConfig
    from app.sim.files import write_simulation
    from app.sim.market import SimulatedMarket
    from app.tuning.sweep import SweepConfig, run_sweep

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--days", type=int, default=10)
    p.add_argument("--configs", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sim = Path(tmp) / "sim"
        market = SimulatedMarket(SimConfig.for_symbols(["BTCUSDT"], days=args.days))
        write_simulation(market.run(), sim)
        widths = [8, 16, 24, 32, 40, 48][: args.configs]
        walls, finished = {}, {}
        for concurrent in (1, 2):
            cfg = SweepConfig(
                data=[str(sim)],
                news=False,
                folds=2,
                fold_indices=[1],
                max_epochs=args.epochs,
                max_windows_per_epoch=1500,
                asha_grace_period=args.epochs + 2,  # no early stops: both runs do equal work
                max_concurrent=concurrent,
                verbose=0,
                out=str(Path(tmp) / f"out{concurrent}"),
                search={"lookback": [16], "d_model": widths, "n_layers": [1]},
            )
            t0 = time.perf_counter()
            report = run_sweep(cfg, load_settings())
            walls[concurrent] = time.perf_counter() - t0
            finished[concurrent] = report["trials_finished"]  # ASHA may stop a weak trial
            ray.shutdown()
    print(
        json.dumps(
            {
                "bench": "sweep",
                "trials": args.configs,
                "epochs": args.epochs,
                "cpus": os.cpu_count(),
                "wall_s_1_parallel": round(walls[1], 1),
                "wall_s_2_parallel": round(walls[2], 1),
                "speedup": round(walls[1] / walls[2], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
