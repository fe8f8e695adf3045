"""A real-data sweep, then the winner beside the baselines on the same walk-forward folds.

    PYTHONPATH=. .venv/bin/python bench/real_sweep.py --config configs/sweep_real_crypto_2022.toml

1. ``app.tuning.sweep.run_sweep`` on the sweep file: every configuration x every fold (Ray Tune,
   ASHA), the best configuration chosen on mean *validation* DACC, the Deflated Sharpe Ratio of
   its ungated strategy over all configurations' trials (``best_config.json``).
2. ``walkforward`` with the winner's settings on the same data and fold layout, which scores
   majority, previous sign, logistic regression and LightGBM on the same test bars
   (``<out>/winner_walkforward/report.md``).

Prints one JSON line: the winner, its pooled test DACC and SE, the baselines, the DSR, the
number of configurations and trials, and the wall time. Not part of ``make test``: a
16-configuration x 3-fold sweep of a 20,000-bar series is tens of CPU-minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def winner_options(best: dict, cfg) -> dict:
    """WalkForwardOptions fields of the winning configuration (sweep defaults elsewhere)."""
    return {
        "model": best.get("kind", cfg.kind),
        "folds": cfg.folds,
        "lookback": best.get("lookback"),
        "d_model": best.get("d_model"),
        "layers": best.get("n_layers"),
        "heads": best.get("n_heads"),
        "max_epochs": best.get("max_epochs", cfg.max_epochs),
        "max_windows": best.get("max_windows_per_epoch", cfg.max_windows_per_epoch),
        "ensemble": best.get("ensemble"),
        "stop_on": best.get("stop_on"),
        "seed": cfg.seed,
        "quick": True,  # the quick preset's remaining fields (batch, lr, patience)
    }


def main() -> None:
    import itertools

    import ray

    from app.config import load_settings
    from app.pipeline.walkforward import WalkForwardOptions, load_walkforward_data, walk_forward
    from app.tuning.search_space import config_key
    from app.tuning.sweep import run_sweep
    from app.tuning.sweep_config import load_sweep_config

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, type=Path)
    args = p.parse_args()
    t0 = time.perf_counter()
    settings = load_settings()
    cfg = load_sweep_config(args.config)
    report = run_sweep(cfg, settings)
    ray.shutdown()
    keys, values = zip(*cfg.search.items(), strict=True)
    combos = [dict(zip(keys, v, strict=True)) for v in itertools.product(*values)]
    best = next(c for c in combos if config_key(c) == report["best_config_key"])
    data = load_walkforward_data(
        settings, paths=cfg.data, symbols=cfg.symbols, asset_class=cfg.asset_class, news=cfg.news
    )
    out = Path(cfg.out) / "winner_walkforward"
    wf = walk_forward(settings, data, WalkForwardOptions(**winner_options(best, cfg)), out)
    summary = wf.report
    print(
        json.dumps(
            {
                "bench": "real_sweep",
                "config": str(args.config),
                "winner": best,
                "winner_val_dacc": report["best"].get("val_dacc"),
                "winner_test_dacc": summary.get("dacc"),
                "winner_test_se": summary.get("dacc_se"),
                "baselines": summary.get("baselines"),
                "deflated_sharpe": report["deflated_sharpe"],
                "n_configurations": report["n_configurations"],
                "trials": report["trials"],
                "trials_finished": report["trials_finished"],
                "seconds": round(time.perf_counter() - t0, 1),
                "report": str(out / "report.md"),
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
