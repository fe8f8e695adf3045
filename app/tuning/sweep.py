"""Ray Tune sweep: configurations x walk-forward folds as parallel trials.

    python -m app.tuning.sweep --config sweep.toml
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m app.tuning.sweep --config sweep.toml

Each trial trains one configuration on one fold with the same code as ``python -m app
walkforward`` (app.tuning.walkforward.run_fold), reports every epoch's validation DACC with a
checkpoint (ASHA stops weak trials early), then the fold's test metrics. Each trial asks for
one GPU when the cluster has GPUs, else ``cpus_per_trial`` CPUs. The best configuration is
chosen on *validation* DACC averaged over folds (never on test); its test metrics, the
Deflated Sharpe Ratio over all configurations, a results table (results.csv) and
best_config.json are written to ``out``; ``register_best`` stores the best configuration's
last-fold model in the registry.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from app.errors import InputError
from app.models.dataset import LabeledSeries, WindowSet
from app.models.registry import save_version
from app.models.train import ModelSpec, TrainConfig
from app.tuning.search_space import DEFAULT_SPACE, config_key, n_configurations, param_space
from app.tuning.search_space import trial_settings as settings_for_trial
from app.tuning.significance import deflated_sharpe, per_period_sharpe
from app.tuning.walkforward import Oracle, WalkForwardConfig, folds_for, run_fold
from app.types import AssetClass


class SweepConfig(BaseModel):
    """The sweep file (TOML or JSON). Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: list[str] = Field(default_factory=list)  # as walkforward --data
    store: str | None = None
    symbols: list[str] = Field(default_factory=list)
    asset_class: AssetClass | None = None
    news: bool = True
    kind: Literal["transformer", "lstm"] = "transformer"
    folds: int = Field(3, ge=1)
    fold_indices: list[int] | None = None  # default: every fold
    scheme: Literal["expanding", "rolling"] = "expanding"
    max_epochs: int = Field(5, ge=1)
    max_windows_per_epoch: int = Field(0, ge=0)
    batch_size: int = Field(256, ge=1)
    search: dict[str, list[Any]] = Field(default_factory=lambda: dict(DEFAULT_SPACE))
    max_concurrent: int = Field(2, ge=1)
    cpus_per_trial: float = Field(1.0, gt=0)
    torch_threads: int = Field(1, ge=1)
    asha_grace_period: int = Field(1, ge=1)
    asha_reduction_factor: float = Field(2.0, gt=1)
    seed: int = 0
    out: str = "runs/sweep"
    register_best: bool = False
    # > 0: refit the best configuration on the last fold with Ray Train's TorchTrainer and this
    # many data-parallel workers (a GPU each when the cluster has them); it is what gets registered
    final_fit_workers: int = Field(0, ge=0)
    registry: str | None = None
    verbose: int = Field(1, ge=0, le=3)


def load_sweep_config(path: str | Path) -> SweepConfig:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"sweep config {p} does not exist")
    raw = tomllib.loads(p.read_text()) if p.suffix == ".toml" else json.loads(p.read_text())
    try:
        return SweepConfig(**raw)
    except ValueError as exc:
        raise InputError(f"sweep config {p}: {exc}") from exc


def _walkforward_config(
    cfg: SweepConfig, asset_class: AssetClass, spec: ModelSpec, train: TrainConfig
) -> WalkForwardConfig:
    from app.config import load_settings

    s = load_settings()
    return WalkForwardConfig(
        asset_class=asset_class,
        spec=spec,
        train=train,
        n_folds=cfg.folds,
        scheme=cfg.scheme,
        horizon=s.labels.horizon,
        gate=s.risk.confidence_gate,
        cost_bps=s.costs.fee_bps[asset_class] + s.costs.slippage_bps,
        baselines=(),
        device=s.model.device,
        seed=cfg.seed,
    )


def _base(cfg: SweepConfig) -> tuple[ModelSpec, TrainConfig]:
    spec = ModelSpec(kind=cfg.kind)
    train = TrainConfig(
        max_epochs=cfg.max_epochs,
        batch_size=cfg.batch_size,
        max_windows_per_epoch=cfg.max_windows_per_epoch,
        seed=cfg.seed,
    )
    return spec, train


def trainable(
    config: dict[str, Any],
    series: list[LabeledSeries],
    sweep: dict[str, Any],
    asset_class: str,
    oracle: Oracle | None = None,
    label_settings: dict[str, Any] | None = None,
    feature_spec: dict[str, Any] | None = None,
    artifacts_dir: str = "",
) -> None:
    """One (configuration, fold): thin glue around app.tuning.walkforward.run_fold.

    The fold's model, test returns and final metrics also go to
    ``artifacts_dir/<config>/fold-<k>/`` (on the sweep's storage, like Tune's own results):
    a scheduler that stops a trial on its last report may drop that report's checkpoint, and
    the summary must not depend on that."""
    from ray import tune

    cfg = SweepConfig(**sweep)
    torch.set_num_threads(cfg.torch_threads)
    spec, train = settings_for_trial(config, *_base(cfg))
    windows = WindowSet(series, spec.lookback)
    wf = _walkforward_config(cfg, AssetClass(asset_class), spec, train)
    folds, grid = folds_for(windows, wf)
    fold = folds[int(config["fold"])]

    def on_epoch(row: dict[str, float], model: torch.nn.Module) -> None:
        with tempfile.TemporaryDirectory() as d:
            torch.save(model.state_dict(), Path(d) / "weights.pt")
            tune.report(dict(row), checkpoint=tune.Checkpoint.from_directory(d))

    outcome = run_fold(
        windows, fold, grid, wf, oracle, label_settings, feature_spec, on_epoch=on_epoch
    )
    m = outcome.metrics["model"]
    final = {
        "epoch": float(outcome.training["epochs_run"] + 1),
        "val_dacc": outcome.training["val_dacc"],
        "done": 1.0,
        "test_dacc": m["dacc"],
        "test_log_loss": m["log_loss"],
        "test_ece": m["ece"],
        "test_selective_dacc": m["selective_dacc"],
        "test_coverage": m["coverage"],
        "test_sharpe": m["sharpe"],
        "test_sharpe_ungated": m["sharpe_ungated"],
        "n_test": outcome.counts["test"],
        "temperature": outcome.training["temperature"],
        "oracle_dacc": outcome.metrics["oracle"]["dacc"] if "oracle" in outcome.metrics else None,
    }
    with tempfile.TemporaryDirectory() as d:
        _write_artifacts(Path(d), outcome, final)
        if artifacts_dir:
            _write_artifacts(_artifact_path(artifacts_dir, config), outcome, final)
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(d))


def _artifact_path(artifacts_dir: str | Path, config: dict[str, Any]) -> Path:
    key = config_key(config).replace("=", "-").replace(",", "_")
    return Path(artifacts_dir) / key / f"fold-{int(config['fold'])}"


def _write_artifacts(path: Path, outcome: Any, final: dict[str, Any]) -> None:
    """model/ (registry format), returns.csv (ungated test returns), final.json (metrics)."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(path / "model", ignore_errors=True)
    save_version(
        path, outcome.result.bundle, metrics={"test": outcome.metrics["model"]}, version="model"
    )
    returns = outcome.returns_ungated["model"]
    pd.DataFrame({"ts": returns.index, "ret": returns.to_numpy()}).to_csv(
        path / "returns.csv", index=False
    )
    (path / "final.json").write_text(json.dumps(final, default=str))


def _resources(cfg: SweepConfig) -> dict[str, float]:
    """One GPU per trial when the cluster has GPUs, CPUs otherwise."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    return {"cpu": 1, "gpu": 1} if gpus >= 1 else {"cpu": cfg.cpus_per_trial}


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


def run_sweep(cfg: SweepConfig) -> dict[str, Any]:
    """Load data once, run every (configuration, fold) trial, write the results."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from app.config import load_settings
    from app.features.spec import default_spec
    from app.tuning.data_loading import feature_series, load_data, load_store

    t0 = time.perf_counter()
    settings = load_settings()
    if cfg.store:
        if cfg.asset_class is None:
            raise InputError("sweep config: asset_class is required with store")
        data = load_store(cfg.store, cfg.symbols, cfg.asset_class)
    elif cfg.data:
        data = load_data(cfg.data, cfg.symbols, cfg.asset_class, news=cfg.news)
    else:
        raise InputError("sweep config: set data = [...] or store = '...'")
    spec = default_spec(data.asset_class)
    series = feature_series(data, spec, settings.labels)
    base_spec, base_train = _base(cfg)
    # validate the fold layout with the longest lookback before any trial starts
    longest = max(cfg.search.get("lookback", [base_spec.lookback]))
    wf = _walkforward_config(cfg, data.asset_class, base_spec, base_train)
    folds, _ = folds_for(WindowSet(series, int(longest)), wf)
    fold_ids = cfg.fold_indices if cfg.fold_indices is not None else [f.index for f in folds]
    bad = [i for i in fold_ids if not 0 <= i < len(folds)]
    if bad:
        raise InputError(f"sweep config fold_indices={bad}: folds are 0..{len(folds) - 1}")

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
    fn = tune.with_parameters(
        trainable,
        series=series,
        sweep=cfg.model_dump(mode="json"),
        asset_class=data.asset_class.value,
        oracle=data.oracle,
        label_settings=settings.labels.model_dump(),
        feature_spec=spec.to_dict(),
        artifacts_dir=str(artifacts),
    )
    tuner = tune.Tuner(
        tune.with_resources(fn, _resources(cfg)),
        param_space=param_space(cfg.search, fold_ids),
        tune_config=tune.TuneConfig(
            metric="val_dacc",
            mode="max",
            max_concurrent_trials=cfg.max_concurrent,
            scheduler=ASHAScheduler(
                time_attr="training_iteration",
                max_t=cfg.max_epochs + 2,  # the final (test) report never hits max_t
                grace_period=cfg.asha_grace_period,
                reduction_factor=cfg.asha_reduction_factor,
            ),
        ),
        run_config=tune.RunConfig(
            name="sweep", storage_path=str(out / "tune"), verbose=cfg.verbose
        ),
    )
    grid = tuner.fit()
    rows, returns, checkpoints, configs = [], {}, {}, {}
    for res in grid:
        conf = dict(res.config or {})
        key = config_key(conf)
        configs[key] = {k: v for k, v in conf.items() if k != "fold"}
        art = _artifact_path(artifacts, conf)
        finished = (art / "final.json").is_file()
        metrics = json.loads((art / "final.json").read_text()) if finished else {}
        metrics = {**dict(res.metrics or {}), **metrics}
        rows.append(
            {
                "config_key": key,
                "fold": conf.get("fold"),
                **{
                    k: metrics.get(k)
                    for k in (
                        "val_dacc",
                        "test_dacc",
                        "test_log_loss",
                        "test_ece",
                        "test_sharpe",
                        "test_sharpe_ungated",
                        "oracle_dacc",
                        "n_test",
                        "training_iteration",
                    )
                },
                "done": 1.0 if finished else 0.0,
                "error": str(res.error) if res.error else "",
            }
        )
        if finished:
            r = pd.read_csv(art / "returns.csv")["ret"].to_numpy()
            returns[key] = np.concatenate([returns.get(key, np.zeros(0)), r])
            if conf.get("fold") == max(fold_ids):
                checkpoints[key] = art / "model"
    results = pd.DataFrame(rows).sort_values(["config_key", "fold"])
    results.to_csv(out / "results.csv", index=False)
    report = summarize(results, returns)
    report.update(
        {
            "n_configurations": n_configurations(cfg.search),
            "folds": fold_ids,
            "trials": len(results),
            "trials_finished": int((results["done"] == 1.0).sum()),
            "seconds": round(time.perf_counter() - t0, 1),
            "data": data.describe(),
            "out": str(out),
        }
    )
    best_key = report["best_config_key"]
    final_bundle = None
    if cfg.final_fit_workers and best_key in configs:
        final_bundle, report["final_fit"] = refit_best(
            cfg,
            configs[best_key],
            series,
            data,
            max(fold_ids),
            out / "final_fit",
            label_settings=settings.labels.model_dump(),
            feature_spec=spec.to_dict(),
        )
    if cfg.register_best and (final_bundle is not None or best_key in checkpoints):
        from app.models.registry import load_version

        if final_bundle is not None:
            bundle, test_metrics = final_bundle, report["final_fit"]["test"]
        else:
            bundle = load_version(checkpoints[best_key].parent, checkpoints[best_key].name)
            test_metrics = bundle.metrics.get("test", {})
        report["version"] = save_version(
            cfg.registry or settings.registry_dir,
            bundle,
            metrics={"sweep": report["best"], "test": test_metrics},
            data_range={"source": data.source, "config": best_key},
        )
    (out / "best_config.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    _print_table(results, report)
    return report


def refit_best(
    cfg: SweepConfig,
    config: dict[str, Any],
    series: list[LabeledSeries],
    data: Any,
    fold_id: int,
    storage: Path,
    *,
    label_settings: dict[str, Any],
    feature_spec: dict[str, Any],
) -> tuple[Any, dict[str, Any]]:
    """Refit ``config`` on fold ``fold_id``'s training block with TorchTrainer, calibrate on its
    validation block and score its test block; returns (bundle, summary)."""
    from app.models.calibration import softmax
    from app.tuning.final_fit import fit_with_torch_trainer
    from app.tuning.metrics import classification_metrics
    from app.tuning.splits import fold_times
    from app.tuning.walkforward import bundle_logits, fill_news_impact

    spec, train = settings_for_trial(config, *_base(cfg))
    windows = WindowSet(series, spec.lookback)
    wf = _walkforward_config(cfg, data.asset_class, spec, train)
    folds, grid = folds_for(windows, wf)
    ft = fold_times(folds[fold_id], grid)
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
        label_settings=label_settings,
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
        report = run_sweep(load_sweep_config(args.config))
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
