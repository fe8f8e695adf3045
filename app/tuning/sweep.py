"""Ray Tune sweep: configurations x walk-forward folds as parallel trials.

    python -m app.tuning.sweep --config sweep.toml
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m app.tuning.sweep --config sweep.toml

Each trial (app.tuning.sweep_trial) trains one configuration on one fold with the same code as
``python -m app walkforward`` (app.tuning.walkforward.run_fold), reports every epoch's
validation DACC with a checkpoint (ASHA stops weak trials early), then the fold's test metrics.
Each trial asks for one GPU when the cluster has GPUs, else ``cpus_per_trial`` CPUs. The best
configuration is chosen on *validation* DACC averaged over folds (never on test); its test
metrics, the Deflated Sharpe Ratio over all configurations, a results table (results.csv) and
best_config.json are written to ``out``; ``register_best`` stores the best configuration's
last-fold model in the registry.

``run_sweep`` is four steps: ``load_sweep_data`` (data, features, fold check, once in the
driver), ``build_tuner``, ``collect_trials`` (from the trials' artifacts) and
``register_best``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.config import Settings, load_settings
from app.errors import InputError
from app.features.spec import FeatureSpec, default_spec
from app.models.bundle import ModelBundle
from app.models.dataset import LabeledSeries, WindowSet
from app.models.registry import load_version, save_version
from app.tuning.data_loading import LoadedData, feature_series, load_data, load_store
from app.tuning.search_space import config_key, n_configurations, param_space, trial_settings
from app.tuning.significance import deflated_sharpe, per_period_sharpe
from app.tuning.sweep_config import (
    SweepConfig,
    base_spec_and_train,
    load_sweep_config,
    walkforward_config,
)
from app.tuning.sweep_trial import (
    FINAL_JSON,
    MODEL_DIR,
    RESULT_METRICS,
    RETURNS_CSV,
    FoldMetrics,
    artifact_path,
    trainable,
)
from app.tuning.walkforward import folds_for

__all__ = ["SweepConfig", "load_sweep_config", "run_sweep", "summarize"]


@dataclass(frozen=True)
class SweepData:
    """What every trial shares, built once in the driver."""

    data: LoadedData
    feature_spec: FeatureSpec
    series: list[LabeledSeries]
    fold_ids: list[int]


@dataclass(frozen=True)
class SweepTrials:
    """The trials as the sweep reads them back: a row each, and the finished ones' outputs."""

    results: pd.DataFrame  # results.csv: one row per trial, sorted by (config_key, fold)
    returns: dict[str, np.ndarray]  # config key -> ungated test returns over its folds
    checkpoints: dict[str, Path]  # config key -> its last-fold model (registry format)
    configs: dict[str, dict[str, Any]]  # config key -> its search values


def load_sweep_data(cfg: SweepConfig, settings: Settings) -> SweepData:
    """Load the data, build features and labels, and check the fold layout with the longest
    lookback, all before any trial starts."""
    if cfg.store:
        if cfg.asset_class is None:
            raise InputError("sweep config: asset_class is required with store")
        data = load_store(cfg.store, cfg.symbols, cfg.asset_class, settings=settings)
    elif cfg.data:
        data = load_data(cfg.data, cfg.symbols, cfg.asset_class, news=cfg.news, settings=settings)
    else:
        raise InputError("sweep config: set data = [...] or store = '...'")
    spec = default_spec(data.asset_class)
    series = feature_series(data, spec, settings.labels)
    base_spec, base_train = base_spec_and_train(cfg)
    longest = max(cfg.search.get("lookback", [base_spec.lookback]))
    wf = walkforward_config(cfg, settings, data.asset_class, base_spec, base_train)
    folds, _ = folds_for(WindowSet(series, int(longest)), wf)
    fold_ids = cfg.fold_indices if cfg.fold_indices is not None else [f.index for f in folds]
    bad = [i for i in fold_ids if not 0 <= i < len(folds)]
    if bad:
        raise InputError(f"sweep config fold_indices={bad}: folds are 0..{len(folds) - 1}")
    return SweepData(data, spec, series, fold_ids)


def build_tuner(
    cfg: SweepConfig,
    settings: Settings,
    shared: SweepData,
    out: Path,
    artifacts: Path,
    callbacks: Sequence[Any] = (),
) -> Any:
    """A ``tune.Tuner`` over every (configuration, fold); the trials get typed inputs.

    A trial checkpoints every epoch; one that fails (a lost node) is restarted up to
    ``cfg.max_failures`` times from its last checkpoint, on any node with room."""
    from ray import tune

    fn = tune.with_parameters(
        trainable,
        series=shared.series,
        sweep=cfg,
        settings=settings,
        asset_class=shared.data.asset_class,
        feature_spec=shared.feature_spec,
        artifacts_dir=artifacts,
        oracle=shared.data.oracle,
    )
    return tune.Tuner(
        tune.with_resources(fn, _resources(cfg)),
        param_space=param_space(cfg.search, shared.fold_ids),
        tune_config=tune.TuneConfig(
            metric="val_dacc",
            mode="max",
            max_concurrent_trials=cfg.max_concurrent,
            scheduler=asha_scheduler(cfg),
        ),
        run_config=tune.RunConfig(
            name="sweep",
            storage_path=cfg.storage or str(out / "tune"),
            verbose=cfg.verbose,
            failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),  # the last two epochs
            callbacks=list(callbacks) or None,
        ),
    )


def asha_scheduler(cfg: SweepConfig) -> Any:
    """ASHA over epochs, its horizon the longest training budget any trial may have."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=_longest_budget(cfg) + 2,  # the final (test) report never hits max_t
        grace_period=cfg.asha_grace_period,
        reduction_factor=cfg.asha_reduction_factor,
    )


def _longest_budget(cfg: SweepConfig) -> int:
    """The most epochs any trial may train: the sweep's own, or the largest searched value."""
    searched = [int(v) for v in cfg.search.get("max_epochs", [])]
    return max([cfg.max_epochs, *searched])


def collect_trials(grid: Any, artifacts: Path, fold_ids: list[int]) -> SweepTrials:
    """Read every trial back: its artifacts when it finished, Tune's last report otherwise."""
    rows, returns, checkpoints, configs = [], {}, {}, {}
    for res in grid:
        conf = dict(res.config or {})
        key = config_key(conf)
        configs[key] = {k: v for k, v in conf.items() if k != "fold"}
        art = artifact_path(artifacts, conf)
        if not (art / FINAL_JSON).is_file():
            fetch_artifacts(res.checkpoint, art)
        finished = (art / FINAL_JSON).is_file()
        last = dict(res.metrics or {})  # Tune's last report (an epoch row when stopped early)
        if finished:
            metrics = FoldMetrics.read(art / FINAL_JSON).result_columns()
        else:  # stopped early: an epoch row knows the validation DACC only
            metrics = {**dict.fromkeys(RESULT_METRICS), "val_dacc": last.get("val_dacc")}
        rows.append(
            {
                "config_key": key,
                "fold": conf.get("fold"),
                **metrics,
                "training_iteration": last.get("training_iteration"),
                "done": 1.0 if finished else 0.0,
                "error": str(res.error) if res.error else "",
            }
        )
        if finished:
            r = pd.read_csv(art / RETURNS_CSV)["ret"].to_numpy()
            returns[key] = np.concatenate([returns.get(key, np.zeros(0)), r])
            if conf.get("fold") == max(fold_ids):
                checkpoints[key] = art / MODEL_DIR
    results = pd.DataFrame(rows).sort_values(["config_key", "fold"])
    return SweepTrials(results, returns, checkpoints, configs)


def fetch_artifacts(checkpoint: Any, art: Path) -> None:
    """Copy a finished trial's artifacts from its last checkpoint into ``art``.

    On several machines a trial writes ``art`` on its own node's disk, where the driver does
    not see it; its final report's checkpoint holds the same files on the sweep's storage
    (``storage``: s3://, gs:// or a shared folder), which every node reads."""
    if checkpoint is None:
        return
    with checkpoint.as_directory() as d:
        if (Path(d) / FINAL_JSON).is_file():
            shutil.copytree(d, art, dirs_exist_ok=True)


def register_best(
    cfg: SweepConfig,
    settings: Settings,
    report: dict[str, Any],
    trials: SweepTrials,
    data: LoadedData,
    final_bundle: ModelBundle | None,
) -> str | None:
    """Store the best configuration's model (the final fit's when there is one, else its
    last-fold trial's) in the registry; the version name, or None when there is none."""
    best_key = report["best_config_key"]
    if not cfg.register_best or (final_bundle is None and best_key not in trials.checkpoints):
        return None
    if final_bundle is not None:
        bundle, test_metrics = final_bundle, report["final_fit"]["test"]
    else:
        checkpoint = trials.checkpoints[best_key]
        bundle = load_version(checkpoint.parent, checkpoint.name)
        test_metrics = bundle.metrics.get("test", {})
    return save_version(
        cfg.registry or settings.registry_dir,
        bundle,
        metrics={"sweep": report["best"], "test": test_metrics},
        data_range={"source": data.source, "config": best_key},
    )


def _resources(cfg: SweepConfig) -> dict[str, float]:
    """One GPU per trial when the cluster has GPUs, CPUs otherwise; plus the custom ones."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    base = {"cpu": 1, "gpu": 1} if gpus >= 1 else {"cpu": cfg.cpus_per_trial}
    return {**cfg.trial_resources, **base}


def summarize(results: pd.DataFrame, returns: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-configuration means over folds; best by validation DACC; DSR over all configs."""
    done = results[results["done"] == 1.0]
    if done.empty:
        raise RuntimeError("sweep: no trial finished (all stopped early or failed)")
    table = (
        done.groupby("config_key")
        .agg(
            val_dacc=("val_dacc", "mean"),
            test_dacc=("test_dacc", "mean"),
            test_log_loss=("test_log_loss", "mean"),
            test_sharpe_ungated=("test_sharpe_ungated", "mean"),
            folds=("fold", "count"),
        )
        .sort_values("val_dacc", ascending=False)
    )
    best_key = str(table.index[0])
    trial_sharpes = [per_period_sharpe(r) for r in returns.values()]
    best_returns = returns.get(best_key, np.zeros(0))
    return {
        "best_config_key": best_key,
        "best": table.iloc[0].to_dict(),
        "configs": table.reset_index().to_dict(orient="records"),
        "deflated_sharpe": deflated_sharpe(best_returns, trial_sharpes),
    }


def run_sweep(
    cfg: SweepConfig, settings: Settings, callbacks: Sequence[Any] = ()
) -> dict[str, Any]:
    """Load data once, run every (configuration, fold) trial, write the results.
    ``callbacks``: extra ``ray.tune.Callback`` objects (progress, fault tests)."""
    import ray

    t0 = time.perf_counter()
    shared = load_sweep_data(cfg, settings)
    if not ray.is_initialized():
        ray.init(
            address="auto" if _cluster_running() else None,
            include_dashboard=False,
            log_to_driver=cfg.verbose > 1,
        )
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    artifacts = out / "trials"
    shutil.rmtree(artifacts, ignore_errors=True)  # a re-run must not read an old run's results
    grid = build_tuner(cfg, settings, shared, out, artifacts, callbacks).fit()
    trials = collect_trials(grid, artifacts, shared.fold_ids)
    results = trials.results
    results.to_csv(out / "results.csv", index=False)
    report = summarize(results, trials.returns)
    report.update(
        {
            "n_configurations": n_configurations(cfg.search),
            "folds": shared.fold_ids,
            "trials": len(results),
            "trials_finished": int((results["done"] == 1.0).sum()),
            "seconds": round(time.perf_counter() - t0, 1),
            "data": shared.data.describe(),
            "out": str(out),
        }
    )
    best_key = report["best_config_key"]
    final_bundle = None
    if cfg.final_fit_workers and best_key in trials.configs:
        final_bundle, report["final_fit"] = refit_best(
            cfg,
            settings,
            trials.configs[best_key],
            shared,
            max(shared.fold_ids),
            out / "final_fit",
        )
    version = register_best(cfg, settings, report, trials, shared.data, final_bundle)
    if version is not None:
        report["version"] = version
    (out / "best_config.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    _print_table(results, report)
    return report


def refit_best(
    cfg: SweepConfig,
    settings: Settings,
    config: dict[str, Any],
    shared: SweepData,
    fold_id: int,
    storage: Path,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Refit ``config`` on fold ``fold_id``'s training block with TorchTrainer, calibrate on its
    validation block and score its test block; returns (bundle, summary)."""
    from app.models.calibration import softmax
    from app.tuning.final_fit import fit_with_torch_trainer
    from app.tuning.metrics import classification_metrics
    from app.tuning.splits import fold_times
    from app.tuning.walkforward import bundle_logits, fill_news_impact

    spec, train = trial_settings(config, *base_spec_and_train(cfg))
    windows = WindowSet(shared.series, spec.lookback)
    wf = walkforward_config(cfg, settings, shared.data.asset_class, spec, train)
    folds, grid = folds_for(windows, wf)
    ft = fold_times(folds[fold_id], grid)
    feature_spec = shared.feature_spec.to_dict()  # the bundle's metadata is plain JSON
    impact = fill_news_impact(windows, ft.train)
    if impact is not None:
        feature_spec = {**feature_spec, "news_impact": impact}
    test = windows.labeled_ends(*ft.test)
    result = fit_with_torch_trainer(
        windows,
        windows.labeled_ends(*ft.train),
        windows.labeled_ends(*ft.val),
        spec,
        train,
        num_workers=cfg.final_fit_workers,
        torch_threads=cfg.torch_threads,
        storage_path=storage,
        label_settings=settings.labels.model_dump(),
        feature_spec=feature_spec,
    )
    bundle = result.bundle
    probs = softmax(bundle_logits(bundle, windows, test), bundle.temperature)
    metrics = classification_metrics(probs, windows.y[test], windows.r[test], wf.gate)
    summary = {
        "workers": cfg.final_fit_workers,
        "fold": fold_id,
        "config": config,
        "val_dacc": result.val_dacc,
        "epochs_run": result.epochs_run,
        "seconds": round(result.train_seconds, 1),
        "test": {k: metrics[k] for k in ("dacc", "log_loss", "ece") if k in metrics},
    }
    return bundle, summary


def _cluster_running() -> bool:
    """True inside ``ray job submit`` or next to a ``ray start`` head (RAY_ADDRESS set)."""
    import os

    return bool(os.environ.get("RAY_ADDRESS"))


def _print_table(results: pd.DataFrame, report: dict[str, Any]) -> None:
    cols = ["config_key", "fold", "val_dacc", "test_dacc", "test_sharpe_ungated", "done"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(results[cols].to_string(index=False), file=sys.stderr)
    print(
        f"best (by validation DACC): {report['best_config_key']} -> {report['best']}",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.tuning.sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="sweep file (.toml or .json)")
    args = parser.parse_args(argv)
    try:
        report = run_sweep(load_sweep_config(args.config), load_settings())
    except (InputError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {
        k: report[k]
        for k in (
            "best_config_key",
            "best",
            "deflated_sharpe",
            "trials",
            "trials_finished",
            "seconds",
            "out",
        )
    }
    summary["version"] = report.get("version")
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
