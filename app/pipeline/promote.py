"""``promote_model``: make a registered model version the one the signal service serves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.models.registry import promote


@dataclass(frozen=True, slots=True)
class PromoteResult:
    """The promoted version and the one it replaced (None when there was none)."""

    registry: Path
    promoted: str
    previous: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "registry": str(self.registry),
            "promoted": self.promoted,
            "previous": self.previous,
        }


def promote_model(registry: Path, version: str) -> PromoteResult:
    """Swap the promoted pointer to ``version`` (InputError when it is not registered)."""
    previous = promote(registry, version)
    return PromoteResult(registry=Path(registry), promoted=version, previous=previous or None)
