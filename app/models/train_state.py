"""``TrainState``: the training loop between two epochs, to resume it after a lost process.

A sweep trial whose node dies restarts elsewhere from its last checkpoint; for the resumed
trial to end with the same model as an uninterrupted one, the checkpoint holds everything the
loop carries from one epoch to the next: weights, optimizer moments, both random generators,
the early-stopping book-keeping and the history. Saved with ``torch.save`` (one file).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "train_state.pt"


@dataclass(frozen=True)
class TrainState:
    """The loop after ``epoch`` epochs (1-based; the next epoch is ``epoch + 1``)."""

    epoch: int
    model: dict[str, Any]  # state_dict after this epoch
    optimizer: dict[str, Any]
    grad_scaler: dict[str, Any]
    rng: dict[str, Any]  # numpy Generator.bit_generator.state (epoch samples, batch order)
    torch_rng: torch.Tensor  # torch.get_rng_state() (dropout)
    best: tuple[float, float]  # stop_score (app/models/validation.py) of the best epoch so far
    best_state: dict[str, Any]
    best_epoch: int
    stale: int  # epochs since the best one (early stopping)
    history: list[dict[str, float]] = field(default_factory=list)
    seen: int = 0  # training windows so far (throughput)
    busy: float = 0.0  # seconds in training steps so far

    def stopped(self, patience: int, max_epochs: int) -> bool:
        """True when the loop had ended here (early stop or last epoch)."""
        return self.stale >= patience or self.epoch >= max_epochs

    def save(self, folder: Path) -> Path:
        path = Path(folder) / STATE_FILE
        torch.save(asdict(self), path)
        return path

    @classmethod
    def load(cls, folder: Path) -> TrainState:
        """The state saved in ``folder``; a missing file is a FileNotFoundError naming it."""
        path = Path(folder) / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no training state at {path}")
        raw = torch.load(path, weights_only=True)  # tensors and plain values only
        raw["best"] = tuple(raw["best"])
        return cls(**raw)
