"""The promoted model as the live loop uses it: raw windows of one bar close -> Signals.

The class of highest calibrated probability maps to the signal (UP -> BUY, DOWN -> SELL,
FLAT -> HOLD, DESIGN.md "Signals"), its probability is the confidence: the same rule as
``app.tuning.event_backtest.signals_frame``, so the batch and the live paths agree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.labels import DOWN, UP
from app.models import registry
from app.types import Probabilities, Signal, SignalAction

# The bundle (and torch) arrive with a version's load, not at import: the Risk replica and the
# execution actor import this module and never load a model.
if TYPE_CHECKING:
    from app.models.bundle import ModelBundle


def action_of(probs: np.ndarray) -> tuple[SignalAction, float]:
    """(signal, confidence) of one probability row ordered [UP, DOWN, FLAT]."""
    top = int(np.argmax(probs))
    action = (
        SignalAction.BUY if top == UP else SignalAction.SELL if top == DOWN else SignalAction.HOLD
    )
    return action, float(probs[top])


def signal_of(ticker: str, ts: datetime, probs: np.ndarray, version: str) -> Signal:
    """The Signal of one ticker on the bar that opened at ``ts``."""
    action, confidence = action_of(probs)
    p = Probabilities(float(probs[UP]), float(probs[DOWN]), float(probs[2]))
    return Signal(ticker, ts, action, confidence, p, version)


@contextlib.contextmanager
def inference_threads(threads: int) -> Iterator[None]:
    """Run the body with this many torch intra-op threads (``model.inference_threads``; 0 keeps
    torch's default), restored after. One bar close is a forward pass over a few windows: a
    thread pool costs more than it saves, and on busy cores its workers wait for each other (a
    tiny LSTM's call measured ~0.5-1 ms on one thread against 34-49 ms on two, cores loaded)."""
    if threads < 0:
        raise ValueError(f"model.inference_threads={threads!r}: must be >= 0")
    if not threads:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class SignalModel:
    """One registry version, loaded; ``signals`` runs it once over every ticker of a bar."""

    version: str
    bundle: ModelBundle

    @classmethod
    def promoted(cls, registry_dir: str | Path) -> SignalModel:
        """The promoted price model (``InputError`` when none is)."""
        version, bundle = registry.load_promoted(registry_dir)
        return cls(version, bundle)

    @classmethod
    def load(cls, registry_dir: str | Path, version: str) -> SignalModel:
        return cls(version, registry.load_version(registry_dir, version))

    @property
    def lookback(self) -> int:
        return self.bundle.lookback

    def probabilities(self, windows: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Calibrated [P(UP), P(DOWN), P(FLAT)] per ticker, one batched forward pass."""
        if not windows:
            return {}
        tickers = list(windows)
        x = np.stack([np.asarray(windows[t], dtype=np.float64) for t in tickers])
        ids = self.bundle.ticker_ids(tickers)
        probs = self.bundle.predict_proba(x, ids)
        return {t: probs[i] for i, t in enumerate(tickers)}

    def signals(self, ts: datetime, windows: Mapping[str, np.ndarray]) -> dict[str, Signal]:
        """Signals of the bar that opened at ``ts`` for every ticker with a window."""
        return {
            t: signal_of(t, ts, p, self.version) for t, p in self.probabilities(windows).items()
        }
