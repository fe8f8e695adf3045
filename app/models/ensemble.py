"""A seed ensemble: N networks of one architecture whose logits are averaged.

The members differ only in their training seed (initialisation, epoch samples, dropout). The
mean of their prior-corrected logits is calibrated once, with one temperature, like a single
model, so ``ModelBundle`` and the registry treat an ensemble as one ``nn.Module``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class EnsembleClassifier(nn.Module):
    """(B, L, F) -> (B, 3): the mean of the members' logits."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"ensemble of {len(members)} member(s): need at least 2")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor, ticker: torch.Tensor | None = None) -> torch.Tensor:
        return torch.stack([m(x, ticker) for m in self.members]).mean(dim=0)
