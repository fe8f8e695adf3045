"""The sweep file (``SweepConfig``) and what a trial builds from it and the settings.

Kept apart from the Ray plumbing (sweep.py) and the trial (sweep_trial.py), which both read it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.config import Settings
from app.errors import InputError
from app.models.train import ModelSpec, TrainConfig
from app.tuning.search_space import DEFAULT_SPACE
from app.tuning.walkforward import WalkForwardConfig
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
    # custom Ray resources every trial also asks for, e.g. {"trainer": 1} declared only by the
    # worker nodes keeps trials off the head
    trial_resources: dict[str, float] = Field(default_factory=dict)
    # a trial that fails (its process or node lost) restarts this many times from its last
    # epoch checkpoint; -1 = without limit
    max_failures: int = Field(2, ge=-1)
    # Tune's storage_path (checkpoints, results); default <out>/tune. With several machines:
    # a folder every node mounts (NFS) or s3://... / gs://...
    storage: str | None = None
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

    @model_validator(mode="after")
    def _final_fit_trains_one_model(self) -> SweepConfig:
        if self.final_fit_workers and any(int(n) > 1 for n in self.search.get("ensemble", [])):
            raise ValueError(
                f"search.ensemble={self.search['ensemble']} with final_fit_workers="
                f"{self.final_fit_workers}: the TorchTrainer final fit trains one model"
            )
        return self


def load_sweep_config(path: str | Path) -> SweepConfig:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"sweep config {p} does not exist")
    raw = tomllib.loads(p.read_text()) if p.suffix == ".toml" else json.loads(p.read_text())
    try:
        return SweepConfig(**raw)
    except ValueError as exc:
        raise InputError(f"sweep config {p}: {exc}") from exc


def base_spec_and_train(cfg: SweepConfig) -> tuple[ModelSpec, TrainConfig]:
    """The model and training settings every trial starts from (its search values go on top)."""
    spec = ModelSpec(kind=cfg.kind)
    train = TrainConfig(
        max_epochs=cfg.max_epochs,
        batch_size=cfg.batch_size,
        max_windows_per_epoch=cfg.max_windows_per_epoch,
        seed=cfg.seed,
    )
    return spec, train


def walkforward_config(
    cfg: SweepConfig,
    settings: Settings,
    asset_class: AssetClass,
    spec: ModelSpec,
    train: TrainConfig,
) -> WalkForwardConfig:
    """The walk-forward layout of a trial: folds from the sweep file, the rest from settings."""
    return WalkForwardConfig(
        asset_class=asset_class,
        spec=spec,
        train=train,
        n_folds=cfg.folds,
        scheme=cfg.scheme,
        horizon=settings.labels.horizon,
        gate=settings.risk.confidence_gate,
        cost_bps=settings.costs.fee_bps[asset_class] + settings.costs.slippage_bps,
        baselines=(),
        device=settings.model.device,
        seed=cfg.seed,
    )
