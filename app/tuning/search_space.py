"""The sweep's search space: which hyperparameters vary, and how a trial's config maps to
the training code's settings. Kept apart from sweep.py so it can change without touching
the Ray plumbing (STYLE.md, "Tune trainables are thin")."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ray import tune

from app.models.train import ModelSpec, TrainConfig

# Hyperparameters a sweep may vary, with the ModelSpec / TrainConfig field they set.
SPEC_KEYS = ("kind", "lookback", "d_model", "n_layers", "n_heads", "dropout", "pooling", "skip")
TRAIN_KEYS = (
    "lr",
    "weight_decay",
    "batch_size",
    "max_epochs",
    "max_windows_per_epoch",
    "stop_on",
    "skip_lr_scale",
    "ensemble",
)

DEFAULT_SPACE: dict[str, list[Any]] = {
    "lookback": [32, 60],
    "d_model": [32, 64],
    "n_layers": [1, 2],
    "dropout": [0.1],
    "lr": [1e-3, 3e-3],
}


def check_space(space: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Reject unknown names and empty value lists (ValueError naming the key)."""
    for key, values in space.items():
        if key not in SPEC_KEYS + TRAIN_KEYS:
            raise ValueError(f"search space key={key!r}: expected one of {SPEC_KEYS + TRAIN_KEYS}")
        if not isinstance(values, list) or not values:
            raise ValueError(f"search space {key}={values!r}: need a non-empty list of values")
    return space


def param_space(space: dict[str, list[Any]], folds: list[int]) -> dict[str, Any]:
    """Grid over every listed value x every fold: one Tune trial per (configuration, fold)."""
    check_space(space)
    grid: dict[str, Any] = {k: tune.grid_search(list(v)) for k, v in space.items()}
    grid["fold"] = tune.grid_search(list(folds))
    return grid


def n_configurations(space: dict[str, list[Any]]) -> int:
    n = 1
    for values in space.values():
        n *= len(values)
    return n


def trial_settings(
    config: dict[str, Any], base_spec: ModelSpec, base_train: TrainConfig
) -> tuple[ModelSpec, TrainConfig]:
    """The ModelSpec and TrainConfig of one trial: the base with the trial's values."""
    spec = replace(base_spec, **{k: config[k] for k in SPEC_KEYS if k in config})
    if spec.d_model % spec.n_heads:
        spec = replace(spec, n_heads=1)
    train = replace(base_train, **{k: config[k] for k in TRAIN_KEYS if k in config})
    return spec, train


def config_key(config: dict[str, Any]) -> str:
    """A stable name for a configuration (the fold excluded), for grouping trials."""
    return ",".join(f"{k}={config[k]}" for k in sorted(config) if k != "fold")
