"""``SimulationResult``: every modality of one simulated market, in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from app.labels import dacc, forward_log_return
from app.sim.manifest import SimManifest
from app.types import AssetClass, FlowPoint, MacroPoint, NewsItem, to_ns


def _ts_column(values: list[datetime]) -> pd.Series:
    ns = np.array([to_ns(v) for v in values], dtype=np.int64)
    return pd.Series(pd.to_datetime(ns, utc=True)).astype("datetime64[ns, UTC]")


def oracle_dacc(close: np.ndarray, oracle: pd.DataFrame, horizon: int) -> float:
    """DACC of the oracle's direction (``p_up > p_down``) on the realized forward returns."""
    r = forward_log_return(np.asarray(close, np.float64), horizon)
    return dacc(oracle["p_up"].to_numpy(), oracle["p_down"].to_numpy(), r)


@dataclass(frozen=True, slots=True)
class SimulationResult:
    bars: dict[str, pd.DataFrame]
    news: list[NewsItem]
    macro: list[MacroPoint]
    flow: list[FlowPoint]
    oracle: dict[str, pd.DataFrame]
    asset_classes: dict[str, AssetClass]
    manifest: SimManifest

    def macro_frame(self) -> pd.DataFrame:
        """Macro points in the store's frame shape: ``symbol(=name), ts, published_at, value``."""
        return pd.DataFrame(
            {
                "symbol": [m.name for m in self.macro],
                "ts": _ts_column([m.ts for m in self.macro]),
                "published_at": _ts_column([m.published_at for m in self.macro]),
                "value": np.array([m.value for m in self.macro], dtype=np.float64),
            }
        )

    def flow_frame(self) -> pd.DataFrame:
        """Flow points in the store's frame shape: ``symbol, ts, kind, published_at, value``."""
        return pd.DataFrame(
            {
                "symbol": [f.symbol for f in self.flow],
                "ts": _ts_column([f.ts for f in self.flow]),
                "kind": [f.kind for f in self.flow],
                "published_at": _ts_column([f.published_at for f in self.flow]),
                "value": np.array([f.value for f in self.flow], dtype=np.float64),
            }
        )

    def oracle_dacc(self, symbol: str) -> float:
        """DACC of the oracle's direction on the realized forward returns."""
        close = self.bars[symbol]["close"].to_numpy()
        return oracle_dacc(close, self.oracle[symbol], self.manifest.horizon)
