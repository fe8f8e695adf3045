"""Transformer encoder that turns a window of bar features into 3 class logits.

One readable file in the spirit of nanoGPT's ``model.py``: a config dataclass, the modules,
shapes in comments, no IO. Output logits are ordered like the labels, [UP, DOWN, FLAT];
``softmax(logits / temperature)`` gives the calibrated probabilities (see calibration.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn

N_CLASSES = 3


@dataclass(frozen=True)
class TransformerConfig:
    n_features: int
    lookback: int = 60
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    dim_feedforward: int = 128
    dropout: float = 0.1
    pooling: Literal["last", "cls"] = "last"
    n_tickers: int = 0  # > 0 adds a learned ticker embedding to every token
    # a linear path from the decision bar's features to the logits, added to the encoder's
    # head (initialised at zero): training starts from a linear model (docs/MODELS.md).
    # False only for bundles saved before it existed.
    skip: bool = False

    def __post_init__(self) -> None:
        if self.n_features < 1:
            raise ValueError(f"n_features={self.n_features}: need at least one feature")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.pooling not in ("last", "cls"):
            raise ValueError(f"pooling={self.pooling!r}: expected 'last' or 'cls'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """Fixed sine/cosine positional encoding, (length, d_model); no weights to overfit."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    div = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10_000.0) / d_model)
    )
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div[: d_model // 2])
    return pe


def zero_head(head: nn.Linear) -> None:
    """Output layer at zero: the network adds nothing to the skip path until it learns to."""
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)


class TransformerClassifier(nn.Module):
    """(B, L, F) features -> (B, 3) logits [UP, DOWN, FLAT]."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.input_proj = nn.Linear(c.n_features, c.d_model)
        extra = 1 if c.pooling == "cls" else 0
        self.register_buffer(
            "pos", sinusoidal_positions(c.lookback + extra, c.d_model), persistent=False
        )
        self.cls = nn.Parameter(torch.zeros(1, 1, c.d_model)) if c.pooling == "cls" else None
        self.ticker_emb = nn.Embedding(c.n_tickers, c.d_model) if c.n_tickers > 0 else None
        self.drop = nn.Dropout(c.dropout)
        layer = nn.TransformerEncoderLayer(
            d_model=c.d_model,
            nhead=c.n_heads,
            dim_feedforward=c.dim_feedforward,
            dropout=c.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,  # pre-norm: stable without warm-up
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=c.n_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, N_CLASSES)
        self.skip = nn.Linear(c.n_features, N_CLASSES) if c.skip else None
        if self.skip is not None:
            zero_head(self.head)

    def forward(self, x: torch.Tensor, ticker: torch.Tensor | None = None) -> torch.Tensor:
        b, length, _ = x.shape  # (B, L, F)
        if length > self.config.lookback:
            raise ValueError(f"window length {length} exceeds lookback {self.config.lookback}")
        h = self.input_proj(x)  # (B, L, D)
        if self.cls is not None:
            h = torch.cat([self.cls.expand(b, -1, -1), h], dim=1)  # (B, 1+L, D)
        h = h + self.pos[: h.shape[1]]  # (B, L', D)
        if self.ticker_emb is not None and ticker is not None:
            h = h + self.ticker_emb(ticker).unsqueeze(1)  # (B, 1, D) broadcast over time
        h = self.encoder(self.drop(h))  # (B, L', D)
        pooled = h[:, 0] if self.cls is not None else h[:, -1]  # (B, D)
        out = self.head(self.norm(pooled))  # (B, 3)
        if self.skip is not None:
            out = out + self.skip(x[:, -1])  # (B, F) decision bar -> (B, 3)
        return out
