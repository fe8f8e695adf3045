"""Named presets of model + training settings (the CLI's --quick, the sweep's defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from app.models.train import ModelSpec, TrainConfig


@dataclass(frozen=True)
class Preset:
    spec: ModelSpec
    train: TrainConfig
    folds: int


# --quick: a 20,000-bar series in under 3 minutes on 2 CPU cores (docs/MODELS.md).
QUICK = Preset(
    spec=ModelSpec(lookback=32, d_model=16, n_layers=1, n_heads=2, dropout=0.1),
    train=TrainConfig(
        max_epochs=3, batch_size=256, lr=2e-3, patience=2, max_windows_per_epoch=6000
    ),
    folds=3,
)

# The default: the settings' model section with a CPU-friendly epoch budget.
STANDARD = Preset(
    spec=ModelSpec(lookback=60, d_model=64, n_layers=2, n_heads=4, dropout=0.1),
    train=TrainConfig(max_epochs=20, batch_size=256, lr=1e-3, patience=3),
    folds=5,
)
