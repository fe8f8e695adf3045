"""Build a classifier from its kind and config dict (what the registry stores)."""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from app.models.ensemble import EnsembleClassifier
from app.models.lstm import LSTMConfig, StackedLSTMClassifier
from app.models.transformer import TransformerClassifier, TransformerConfig

ModelKind = Literal["transformer", "lstm"]
MODEL_KINDS: tuple[str, ...] = ("transformer", "lstm")


def build_model(kind: str, config: dict[str, Any]) -> nn.Module:
    """A fresh, untrained model; raises ValueError naming an unknown kind or config key.
    ``config["ensemble"] = N > 1`` builds N members of the rest of the config (averaged)."""
    n = int(config.get("ensemble", 1))
    if n < 1:
        raise ValueError(f"ensemble={n}: must be >= 1")
    if n > 1 or "ensemble" in config:
        inner = {k: v for k, v in config.items() if k != "ensemble"}
        if n == 1:
            return build_model(kind, inner)
        return EnsembleClassifier([build_model(kind, inner) for _ in range(n)])
    if kind == "transformer":
        return TransformerClassifier(TransformerConfig(**config))
    if kind == "lstm":
        return StackedLSTMClassifier(LSTMConfig(**config))
    raise ValueError(f"model kind={kind!r}: expected one of {MODEL_KINDS}")


def model_config_for(
    kind: str,
    *,
    n_features: int,
    lookback: int,
    d_model: int,
    n_layers: int,
    n_heads: int = 4,
    dropout: float = 0.1,
    n_tickers: int = 0,
    pooling: str = "last",
    skip: bool = True,
) -> dict[str, Any]:
    """The config dict of ``kind`` from the shared hyperparameter names (d_model = LSTM hidden).
    ``skip``: the linear last-bar path (new models have it; see transformer.py)."""
    if kind == "transformer":
        heads = n_heads if d_model % n_heads == 0 else 1
        return TransformerConfig(
            n_features=n_features,
            lookback=lookback,
            d_model=d_model,
            n_layers=n_layers,
            n_heads=heads,
            dim_feedforward=2 * d_model,
            dropout=dropout,
            pooling=pooling,  # type: ignore[arg-type]
            n_tickers=n_tickers,
            skip=skip,
        ).to_dict()
    if kind == "lstm":
        return LSTMConfig(
            n_features=n_features,
            lookback=lookback,
            hidden=d_model,
            n_layers=n_layers,
            dropout=dropout,
            n_tickers=n_tickers,
            skip=skip,
        ).to_dict()
    raise ValueError(f"model kind={kind!r}: expected one of {MODEL_KINDS}")
