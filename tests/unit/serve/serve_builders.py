"""Builders for the signal API tests: settings with fresh keys, a real registry, a live view."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from app.clock import ReplayClock
from app.config import Settings, load_settings
from app.models.bundle import ModelBundle
from app.models.dataset import FeatureScaler
from app.models.factory import build_model, model_config_for
from app.models.registry import save_version
from app.risk.engine import RiskEngine
from app.serve.memory import MemoryLiveView
from app.types import (
    BAR_INTERVAL,
    DecisionAction,
    Probabilities,
    RiskDecision,
    RiskState,
    Signal,
    SignalAction,
)
from tests.builders import T0

VERSIONS = ("lstm-20250101T000000-aaaaaaaa", "lstm-20250102T000000-bbbbbbbb")


@dataclass(frozen=True)
class Keys:
    operate: str
    read: str

    def op(self) -> dict[str, str]:
        return {"X-API-Key": self.operate}

    def ro(self) -> dict[str, str]:
        return {"X-API-Key": self.read}


def fresh_keys() -> Keys:
    """Keys made at test time (nothing key-like is committed)."""
    return Keys(secrets.token_urlsafe(24), secrets.token_urlsafe(24))


def api_settings(tmp_path: Path, keys: Keys, **api: object) -> Settings:
    return load_settings(
        registry_dir=tmp_path / "registry",
        api={"keys": [keys.operate], "read_keys": [keys.read], **api},
    )


def tiny_registry(root: Path) -> Path:
    """A registry with two real (tiny, untrained) LSTM versions, none promoted."""
    n_features, lookback = 3, 4
    for version in VERSIONS:
        config = model_config_for(
            "lstm", n_features=n_features, lookback=lookback, d_model=8, n_layers=1
        )
        bundle = ModelBundle(
            kind="lstm",
            model_config=config,
            model=build_model("lstm", config),
            scaler=FeatureScaler(np.zeros(n_features), np.ones(n_features)),
            temperature=1.0,
            lookback=lookback,
            feature_names=("a", "b", "c"),
            symbols=("BTCUSDT",),
            label_settings={"horizon": 1},
            feature_spec={},
            metrics={"val_dacc": 0.55},
        )
        save_version(root, bundle, version=version)
    return root


def live_view(settings: Settings, clock: ReplayClock, **kw: object) -> MemoryLiveView:
    return MemoryLiveView.from_settings(settings, clock, RiskEngine(settings.risk), **kw)


def signal_at(
    i: int,
    ticker: str = "BTCUSDT",
    action: SignalAction = SignalAction.BUY,
    up: float = 0.8,
    version: str = VERSIONS[0],
) -> tuple[Signal, RiskDecision]:
    """A signal on bar i (open T0 + i bars) and a HOLD decision on it."""
    rest = (1.0 - up) / 2
    ts = T0 + i * BAR_INTERVAL
    signal = Signal(ticker, ts, action, up, Probabilities(up, rest, 1.0 - up - rest), version)
    decision = RiskDecision(
        ts + BAR_INTERVAL, ticker, DecisionAction.HOLD, RiskState.ACTIVE, (), ("signal_hold",)
    )
    return signal, decision


def close_of(i: int) -> timedelta:
    """Offset from T0 of the close of bar i."""
    return (i + 1) * BAR_INTERVAL
