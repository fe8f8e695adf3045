"""The sweep's typed hand-offs: what crosses tune.with_parameters pickles as itself, and a
trial's final metrics keep the report keys Tune and results.csv read."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from app.config import load_settings
from app.features.spec import default_spec
from app.models.train import ModelSpec, TrainConfig
from app.tuning.splits import Fold
from app.tuning.sweep_config import SweepConfig, walkforward_config
from app.tuning.sweep_trial import RESULT_METRICS, FoldMetrics, artifact_path
from app.tuning.walkforward import FoldOutcome
from app.types import AssetClass

REPORT_KEYS = [
    "epoch",
    "val_dacc",
    "done",
    "test_dacc",
    "test_log_loss",
    "test_ece",
    "test_selective_dacc",
    "test_coverage",
    "test_sharpe",
    "test_sharpe_ungated",
    "n_test",
    "temperature",
    "oracle_dacc",
]


def _outcome(with_oracle: bool) -> FoldOutcome:
    model = {
        "dacc": 0.55,
        "log_loss": 1.02,
        "ece": 0.03,
        "selective_dacc": 0.6,
        "coverage": 0.2,
        "sharpe": 1.5,
        "sharpe_ungated": 0.8,
    }
    metrics = {"model": model, **({"oracle": {"dacc": 0.61}} if with_oracle else {})}
    return FoldOutcome(
        fold=Fold(1, (0, 10), (12, 20), (22, 30)),
        times={},
        counts={"train": 100, "val": 40, "test": 37},
        training={"epochs_run": 3, "val_dacc": 0.57, "temperature": 1.3},
        metrics=metrics,
        probs={},
        returns={},
        returns_ungated={},
        test_ends=np.zeros(0, dtype=np.int64),
    )


@pytest.mark.parametrize("with_oracle", [True, False])
def test_fold_metrics_report_keeps_the_keys_tune_reads(tmp_path: Path, with_oracle: bool) -> None:
    final = FoldMetrics.from_outcome(_outcome(with_oracle))
    report = final.to_dict()
    assert list(report) == REPORT_KEYS
    assert report["done"] == 1.0 and report["epoch"] == 4.0 and report["n_test"] == 37
    assert report["oracle_dacc"] == (0.61 if with_oracle else None)
    assert list(final.result_columns()) == list(RESULT_METRICS)
    path = tmp_path / "final.json"
    path.write_text(json.dumps(report))
    assert FoldMetrics.read(path) == final


def test_fold_metrics_read_names_a_missing_metric(tmp_path: Path) -> None:
    path = tmp_path / "final.json"
    path.write_text('{"epoch": 2.0, "val_dacc": 0.5}')
    with pytest.raises(KeyError, match="test_dacc"):
        FoldMetrics.read(path)


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_the_sweep_hands_trials_frozen_objects_that_pickle_as_themselves(dumps) -> None:
    settings = load_settings()
    sweep = SweepConfig(data=["runs/sim"], folds=2, search={"lookback": [16]})
    spec = default_spec(AssetClass.CRYPTO)
    for obj in (settings, sweep, spec, AssetClass.CRYPTO):
        back = pickle.loads(dumps(obj))
        assert back == obj and type(back) is type(obj)
    with pytest.raises(ValueError, match="frozen"):
        sweep.folds = 3  # type: ignore[misc]


def test_walkforward_config_takes_its_numbers_from_the_settings_passed_in() -> None:
    settings = load_settings(risk={"confidence_gate": 0.8}, labels={"horizon": 3})
    wf = walkforward_config(
        SweepConfig(folds=4), settings, AssetClass.STOCKS, ModelSpec(), TrainConfig()
    )
    costs = settings.costs
    assert (wf.n_folds, wf.horizon, wf.gate) == (4, 3, 0.8)
    assert wf.cost_bps == costs.fee_bps[AssetClass.STOCKS] + costs.slippage_bps


def test_artifact_path_names_config_and_fold(tmp_path: Path) -> None:
    path = artifact_path(tmp_path, {"lookback": 16, "d_model": 8, "fold": 1})
    assert path == tmp_path / "d_model-8_lookback-16" / "fold-1"


def test_collect_trials_reads_a_trial_from_its_checkpoint_when_its_node_kept_the_files(
    tmp_path: Path,
) -> None:
    """Trials on other machines leave their artifacts on their own disks: the driver reads the
    final checkpoint (on the sweep's storage) instead."""
    from ray.tune import Checkpoint, Result

    from app.tuning.sweep import collect_trials

    final = FoldMetrics.from_outcome(_outcome(with_oracle=False))
    ckpt = tmp_path / "storage" / "checkpoint_000004"
    (ckpt / "model").mkdir(parents=True)
    (ckpt / "final.json").write_text(json.dumps(final.to_dict()))
    (ckpt / "returns.csv").write_text("ts,ret\n2025-01-01,0.01\n2025-01-02,-0.02\n")
    config = {"d_model": 8, "fold": 1}
    metrics = {**final.to_dict(), "config": config, "training_iteration": 5}
    grid = [Result(metrics, Checkpoint.from_directory(str(ckpt)), None, str(tmp_path / "trial"))]
    artifacts = tmp_path / "driver" / "trials"  # empty: the trial ran elsewhere

    trials = collect_trials(grid, artifacts, fold_ids=[1])

    row = trials.results.iloc[0]
    assert row["done"] == 1.0 and row["test_dacc"] == 0.55 and row["val_dacc"] == 0.57
    assert trials.returns[row["config_key"]].tolist() == [0.01, -0.02]
    assert trials.checkpoints[row["config_key"]] == artifact_path(artifacts, config) / "model"
    assert (artifact_path(artifacts, config) / "final.json").is_file()
