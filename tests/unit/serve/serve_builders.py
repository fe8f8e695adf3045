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
    AssetClass,
    DecisionAction,
    Fill,
    Order,
    OrderStatus,
    Position,
    Probabilities,
    RiskDecision,
    RiskState,
    Side,
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
            "lstm", n_features=n_features, lookback=lookback, d_model=8, n_layers=1, skip=False
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


def populate(v: MemoryLiveView, clock: ReplayClock) -> None:
    """A little of everything the live loop records: bars 0-2, a signal each, an order, a fill."""
    v.add_feed("replay-crypto", AssetClass.CRYPTO, ["BTCUSDT", "ETHUSDT"])
    for i in range(3):
        clock.advance_to(T0 + close_of(i))
        v.feed_bar("replay-crypto", AssetClass.CRYPTO, "BTCUSDT", T0 + i * BAR_INTERVAL)
        v.publish_signal(*signal_at(i))
        v.mark(T0 + i * BAR_INTERVAL, 1000.0 + 5 * i, 1000.0, {}, {})
    order = Order("BTCUSDT-1-L", "BTCUSDT", Side.BUY, 2.0, T0 + BAR_INTERVAL, stop_loss=90.0)
    v.record_order(order, OrderStatus.FILLED, T0 + close_of(2), 2.0, 100.5)
    v.record_fill(
        Fill(
            order.client_order_id,
            "BTCUSDT",
            Side.BUY,
            2.0,
            100.5,
            0.2,
            T0 + close_of(1),
            fill_id="t1",
        )
    )
    v.mark(
        T0 + 2 * BAR_INTERVAL, 1010.0, 1000.0,
        {"BTCUSDT": Position("BTCUSDT", 2.0, 100.5, T0 + close_of(1), stop_loss=90.0)},
        {"BTCUSDT": 105.0},
    )  # fmt: skip
