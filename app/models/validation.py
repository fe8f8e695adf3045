"""Validation scores of a network during training: what early stopping compares."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from app.labels import dacc
from app.models.calibration import fit_temperature, nll, softmax
from app.models.dataset import WindowSet, iterate_batches


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    windows: WindowSet,
    X: np.ndarray,
    ends: np.ndarray,
    device: torch.device,
    batch_size: int = 2048,
) -> np.ndarray:
    """Uncalibrated logits (N, 3) for the windows ending at ``ends`` of the scaled ``X``."""
    model.eval()
    out = []
    for x, _, tk in iterate_batches(windows, X, ends, batch_size):
        with torch.autocast(device_type="cuda", enabled=device.type == "cuda"):
            out.append(model(x.to(device), tk.to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 3), dtype=np.float32)


def direction_accuracy(logits: np.ndarray, r: np.ndarray) -> float:
    return dacc(logits[:, 0], logits[:, 1], r)  # softmax is monotone: compare logits


def from_rank_zero(values: list[float], device: torch.device) -> list[float]:
    import torch.distributed as dist

    scores = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(scores, src=0)
    return [float(v) for v in scores]


def validation_scores(
    model: nn.Module,
    windows: WindowSet,
    X: np.ndarray,
    val_ends: np.ndarray,
    bias: np.ndarray,
    device: torch.device,
    world: int = 1,
    batch_size: int = 2048,
) -> dict[str, float]:
    """DACC, log loss and log loss after a fitted temperature on the validation windows, of
    the model as it will predict (prior-corrected logits)."""
    logits = predict_logits(model, windows, X, val_ends, device, batch_size) + bias
    val_y = windows.y[val_ends]
    v_dacc = direction_accuracy(logits, windows.r[val_ends])
    v_loss = nll(softmax(logits), val_y)
    v_cal = nll(softmax(logits, fit_temperature(logits, val_y)), val_y)
    if world > 1:  # one decision for all workers, or they wait on each other forever
        v_dacc, v_loss, v_cal = from_rank_zero([v_dacc, v_loss, v_cal], device)
    return {"val_dacc": v_dacc, "val_loss": v_loss, "val_loss_cal": v_cal}


def stop_score(row: dict[str, float], stop_on: str) -> tuple[float, float]:
    """Larger is better: (primary, tie-break) for the early-stopping criterion."""
    d = row["val_dacc"] if np.isfinite(row["val_dacc"]) else -np.inf
    if stop_on == "dacc":
        return d, -row["val_loss"]
    return -row["val_loss_cal"], d
