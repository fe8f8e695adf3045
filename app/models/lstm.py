"""Stacked LSTM with the same interface as the Transformer: (B, L, F) -> (B, 3) logits."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from app.models.transformer import N_CLASSES, zero_head


@dataclass(frozen=True)
class LSTMConfig:
    n_features: int
    lookback: int = 60
    hidden: int = 64
    n_layers: int = 2
    dropout: float = 0.1
    n_tickers: int = 0  # > 0 adds a learned ticker embedding to the input of every step
    skip: bool = False  # linear path from the last bar to the logits (as the Transformer's)

    def __post_init__(self) -> None:
        if self.n_features < 1:
            raise ValueError(f"n_features={self.n_features}: need at least one feature")
        if self.hidden < 1 or self.n_layers < 1:
            raise ValueError(f"hidden={self.hidden}, n_layers={self.n_layers}: must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StackedLSTMClassifier(nn.Module):
    """(B, L, F) features -> (B, 3) logits [UP, DOWN, FLAT], read from the last time step."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.input_proj = nn.Linear(c.n_features, c.hidden)
        self.ticker_emb = nn.Embedding(c.n_tickers, c.hidden) if c.n_tickers > 0 else None
        self.lstm = nn.LSTM(
            c.hidden,
            c.hidden,
            num_layers=c.n_layers,
            batch_first=True,
            dropout=c.dropout if c.n_layers > 1 else 0.0,
        )
        self.norm = nn.LayerNorm(c.hidden)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, N_CLASSES)
        self.skip = nn.Linear(c.n_features, N_CLASSES) if c.skip else None
        if self.skip is not None:
            zero_head(self.head)

    def forward(self, x: torch.Tensor, ticker: torch.Tensor | None = None) -> torch.Tensor:
        h = self.input_proj(x)  # (B, L, H)
        if self.ticker_emb is not None and ticker is not None:
            h = h + self.ticker_emb(ticker).unsqueeze(1)  # (B, 1, H)
        out, _ = self.lstm(h)  # (B, L, H)
        logits = self.head(self.drop(self.norm(out[:, -1])))  # (B, 3)
        if self.skip is not None:
            logits = logits + self.skip(x[:, -1])  # (B, F) decision bar -> (B, 3)
        return logits
