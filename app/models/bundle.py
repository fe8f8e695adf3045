"""A trained model with everything needed to reproduce its probabilities from raw features."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from app.models.calibration import softmax
from app.models.dataset import FeatureScaler


@dataclass
class ModelBundle:
    """Weights + config + scaler + temperature + the vocabulary the inputs must follow.

    ``predict_proba`` takes *raw* (unscaled) windows, so a caller (the signal service, a
    backtest) only has to build features with ``feature_spec`` and cut the last ``lookback``
    rows.
    """

    kind: str
    model_config: dict[str, Any]
    model: nn.Module
    scaler: FeatureScaler
    temperature: float
    lookback: int
    feature_names: tuple[str, ...]
    symbols: tuple[str, ...]  # ticker index of the optional ticker embedding
    label_settings: dict[str, Any]
    feature_spec: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    logit_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)  # undoes class weighting

    def ticker_ids(self, symbols: list[str] | tuple[str, ...]) -> np.ndarray:
        index = {s: i for i, s in enumerate(self.symbols)}
        unknown = [s for s in symbols if s not in index]
        if unknown and self.model_config.get("n_tickers", 0) > 0:
            raise ValueError(f"symbol={unknown[0]!r}: not among the model's tickers {self.symbols}")
        return np.asarray([index.get(s, 0) for s in symbols], dtype=np.int64)

    @torch.no_grad()
    def logits(
        self,
        windows: np.ndarray,
        ticker: np.ndarray | None = None,
        device: torch.device | str = "cpu",
        batch_size: int = 1024,
    ) -> np.ndarray:
        """Raw windows (N, L, F) -> prior-corrected logits (N, 3), before the temperature."""
        windows = np.asarray(windows)
        if windows.ndim != 3 or windows.shape[1:] != (self.lookback, len(self.feature_names)):
            raise ValueError(
                f"windows: shape {windows.shape}, "
                f"expected (N, {self.lookback}, {len(self.feature_names)})"
            )
        if not np.all(np.isfinite(windows)):
            raise ValueError("windows: non-finite feature values")
        self.model.eval()
        self.model.to(device)
        out = []
        for i in range(0, windows.shape[0], batch_size):
            x = torch.from_numpy(self.scaler.transform(windows[i : i + batch_size])).to(device)
            tk = None
            if ticker is not None:
                tk = torch.from_numpy(np.asarray(ticker[i : i + batch_size], dtype=np.int64)).to(
                    device
                )
            out.append(self.model(x, tk).float().cpu().numpy())
        raw = np.concatenate(out) if out else np.zeros((0, 3))
        return raw + np.asarray(self.logit_bias)

    def predict_proba(
        self,
        windows: np.ndarray,
        ticker: np.ndarray | None = None,
        device: torch.device | str = "cpu",
    ) -> np.ndarray:
        """Calibrated probabilities (N, 3) ordered [P(UP), P(DOWN), P(FLAT)]."""
        return softmax(self.logits(windows, ticker, device), self.temperature)
