"""One sweep trial: a (configuration, fold) pair trained and scored by the walk-forward code.

Thin glue (STYLE.md, "Tune trainables are thin"): ``trainable`` calls
``app.tuning.walkforward.run_fold``, the code ``python -m app walkforward`` runs, and reports
through ``tune.report``. Its inputs arrive typed through ``tune.with_parameters`` (the frozen
settings objects pickle); its final metrics leave as a ``FoldMetrics``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from app.config import Settings
from app.features.spec import FeatureSpec
from app.models.dataset import LabeledSeries, WindowSet
from app.models.registry import save_version
from app.models.train_state import TrainState
from app.tuning.search_space import config_key, trial_settings
from app.tuning.splits import Fold
from app.tuning.sweep_config import SweepConfig, base_spec_and_train, walkforward_config
from app.tuning.walkforward import FoldOutcome, Oracle, WalkForwardConfig, folds_for, run_fold
from app.types import AssetClass

FINAL_JSON = "final.json"
RETURNS_CSV = "returns.csv"
MODEL_DIR = "model"
# results.csv columns after config_key and fold (FoldMetrics.result_columns, in this order)
RESULT_METRICS: tuple[str, ...] = (
    "val_dacc",
    "test_dacc",
    "test_log_loss",
    "test_ece",
    "test_sharpe",
    "test_sharpe_ungated",
    "oracle_dacc",
    "n_test",
)


@dataclass(frozen=True, slots=True)
class FoldMetrics:
    """A finished trial's metrics: its best validation DACC and its fold's test scores."""

    epoch: float  # the final report's training step (one past the last epoch)
    val_dacc: float
    test_dacc: float
    test_log_loss: float
    test_ece: float
    test_selective_dacc: float
    test_coverage: float
    test_sharpe: float
    test_sharpe_ungated: float
    n_test: int
    temperature: float
    oracle_dacc: float | None  # None without a simulator oracle

    @classmethod
    def from_outcome(cls, outcome: FoldOutcome) -> FoldMetrics:
        m = outcome.metrics["model"]
        oracle = outcome.metrics.get("oracle")
        return cls(
            epoch=float(outcome.training["epochs_run"] + 1),
            val_dacc=outcome.training["val_dacc"],
            test_dacc=m["dacc"],
            test_log_loss=m["log_loss"],
            test_ece=m["ece"],
            test_selective_dacc=m["selective_dacc"],
            test_coverage=m["coverage"],
            test_sharpe=m["sharpe"],
            test_sharpe_ungated=m["sharpe_ungated"],
            n_test=outcome.counts["test"],
            temperature=outcome.training["temperature"],
            oracle_dacc=oracle["dacc"] if oracle is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The report Tune receives (``done`` marks the final one) and final.json holds."""
        d: dict[str, Any] = {"epoch": self.epoch, "val_dacc": self.val_dacc, "done": 1.0}
        d.update({f.name: getattr(self, f.name) for f in fields(self)[2:]})
        return d

    def result_columns(self) -> dict[str, Any]:
        """This trial's cells of results.csv (``RESULT_METRICS``)."""
        return {
            "val_dacc": self.val_dacc,
            "test_dacc": self.test_dacc,
            "test_log_loss": self.test_log_loss,
            "test_ece": self.test_ece,
            "test_sharpe": self.test_sharpe,
            "test_sharpe_ungated": self.test_sharpe_ungated,
            "oracle_dacc": self.oracle_dacc,
            "n_test": self.n_test,
        }

    @classmethod
    def read(cls, path: Path) -> FoldMetrics:
        """A trial's final.json; a missing metric is a KeyError naming it."""
        raw = json.loads(path.read_text())
        return cls(**{f.name: raw[f.name] for f in fields(cls)})


def artifact_path(artifacts_dir: Path, config: dict[str, Any]) -> Path:
    """Where the trial of ``config`` (with its ``fold``) leaves its model, returns and metrics."""
    key = config_key(config).replace("=", "-").replace(",", "_")
    return artifacts_dir / key / f"fold-{int(config['fold'])}"


def trial_inputs(
    config: dict[str, Any],
    series: list[LabeledSeries],
    sweep: SweepConfig,
    settings: Settings,
    asset_class: AssetClass,
) -> tuple[WindowSet, Fold, np.ndarray, WalkForwardConfig]:
    """(windows, fold, time grid, walk-forward config) of the trial of ``config``: what
    ``run_fold`` takes, so a trial can be re-run outside Tune (an uninterrupted reference)."""
    spec, train = trial_settings(config, *base_spec_and_train(sweep))
    windows = WindowSet(series, spec.lookback)
    wf = walkforward_config(sweep, settings, asset_class, spec, train)
    folds, grid = folds_for(windows, wf)
    return windows, folds[int(config["fold"])], grid, wf


def trainable(
    config: dict[str, Any],
    *,
    series: list[LabeledSeries],
    sweep: SweepConfig,
    settings: Settings,
    asset_class: AssetClass,
    feature_spec: FeatureSpec,
    artifacts_dir: Path,
    oracle: Oracle | None = None,
) -> None:
    """One (configuration, fold): thin glue around app.tuning.walkforward.run_fold.

    Every epoch is reported with a checkpoint holding the loop's whole state
    (``TrainState``); a trial restarted after a failure (``FailureConfig(max_failures)``,
    e.g. its node was lost) continues from its last checkpoint and ends as it would have
    without the failure. Each report names the node it came from (``node_id``).

    The fold's model, test returns and final metrics also go to
    ``artifacts_dir/<config>/fold-<k>/`` (on the sweep's storage, like Tune's own results):
    a scheduler that stops a trial on its last report may drop that report's checkpoint, and
    the summary must not depend on that."""
    import ray
    from ray import tune

    node_id = ray.get_runtime_context().get_node_id()
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            if (Path(d) / FINAL_JSON).is_file():  # lost after its last report: report it again
                tune.report({**json.loads((Path(d) / FINAL_JSON).read_text()), "node_id": node_id})
                return
            resume = TrainState.load(Path(d))
    torch.set_num_threads(sweep.torch_threads)
    windows, fold, grid, wf = trial_inputs(config, series, sweep, settings, asset_class)

    def on_state(state: TrainState) -> None:
        with tempfile.TemporaryDirectory() as d:
            state.save(Path(d))
            row = {**state.history[-1], "node_id": node_id}
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(d))

    outcome = run_fold(
        windows,
        fold,
        grid,
        wf,
        oracle,
        settings.labels.model_dump(),  # the bundle's metadata (registry format) is plain JSON
        feature_spec.to_dict(),
        resume=resume,
        on_state=on_state,
    )
    final = FoldMetrics.from_outcome(outcome)
    with tempfile.TemporaryDirectory() as d:
        write_artifacts(Path(d), outcome, final)
        write_artifacts(artifact_path(artifacts_dir, config), outcome, final)
        report = {**final.to_dict(), "node_id": node_id}
        tune.report(report, checkpoint=tune.Checkpoint.from_directory(d))


def write_artifacts(path: Path, outcome: FoldOutcome, final: FoldMetrics) -> None:
    """model/ (registry format), returns.csv (ungated test returns), final.json (metrics)."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(path / MODEL_DIR, ignore_errors=True)
    save_version(
        path, outcome.result.bundle, metrics={"test": outcome.metrics["model"]}, version=MODEL_DIR
    )
    returns = outcome.returns_ungated["model"]
    pd.DataFrame({"ts": returns.index, "ret": returns.to_numpy()}).to_csv(
        path / RETURNS_CSV, index=False
    )
    (path / FINAL_JSON).write_text(json.dumps(final.to_dict(), default=str))
