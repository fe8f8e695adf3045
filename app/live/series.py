"""A recorded series replayed as bar closes, with the windows the model reads.

Features come from the batch engine (``app.features.batch.build_features``) with the model's
own feature spec, over the whole series (so the warm-up precedes the replayed part); the
window of bar ``t`` is the ``lookback`` rows ending at ``t``, in the model's column order. A bar
without a complete finite window still replays (its fills and stops happen), it just has no
signal. ``predict_frame`` is the batch counterpart: every window in one pass, the same numbers.

Bars of every ticker that open at the same instant form one close, in ticker order: the
backtester's grouping (``app/backtest/engine.py``), so the two walk the same events.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import datetime

import numpy as np
import pandas as pd

from app.errors import InputError
from app.features.batch import build_features
from app.features.spec import FeatureSpec
from app.live.model import SignalModel, action_of
from app.types import AssetClass, Bar, from_ns

SIGNAL_CSV_COLUMNS = (
    "ts",
    "ticker",
    "signal",
    "confidence",
    "p_up",
    "p_down",
    "p_flat",
    "model_version",
)


@dataclass(frozen=True, slots=True)
class ReplayClose:
    """Every ticker's bar that opened at ``ts``, with its window (``ClosedBars``)."""

    ts: datetime
    bars: Mapping[str, Bar]
    windows: Mapping[str, np.ndarray]


def _ns(column: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(column.astype("datetime64[ns, UTC]")).asi8.astype(np.int64)


class SeriesReplay:
    """Bars of several tickers (one asset class per ticker) and their model windows."""

    def __init__(
        self,
        bars: Mapping[str, pd.DataFrame],
        asset_classes: Mapping[str, AssetClass],
        model: SignalModel,
        *,
        news: pd.DataFrame | None = None,
        macro: pd.DataFrame | None = None,
        flow: pd.DataFrame | None = None,
    ) -> None:
        bundle = model.bundle
        if not bundle.feature_spec:
            raise InputError(f"model {model.version}: no feature spec stored with it")
        known = {f.name for f in fields(FeatureSpec)}
        spec = FeatureSpec.from_dict({k: v for k, v in bundle.feature_spec.items() if k in known})
        names = list(bundle.feature_names)
        self.bars = {s: f.reset_index(drop=True) for s, f in bars.items()}
        self.lookback = bundle.lookback
        self._x: dict[str, np.ndarray] = {}
        self._ok: dict[str, np.ndarray] = {}
        self._ts: dict[str, np.ndarray] = {}
        for sym, frame in self.bars.items():
            if spec.asset_class is not AssetClass(asset_classes[sym]):
                raise InputError(
                    f"ticker={sym!r} is {asset_classes[sym]}; model {model.version} was trained "
                    f"on {spec.asset_class.value}"
                )
            feats = build_features(
                frame, asset_class=spec.asset_class, news=news, macro=macro, flow=flow, spec=spec
            )
            missing = [n for n in names if n not in feats.columns]
            if missing:
                raise InputError(
                    f"model {model.version}: feature columns {missing[:3]} are not built from "
                    "bars and side inputs (fold-fitted news-impact columns need their model)"
                )
            x = feats[names].to_numpy(np.float64)  # float64, as the feed's windows
            finite = np.isfinite(x).all(axis=1)
            # a window is complete when its lookback rows are all finite
            run = np.convolve(finite.astype(np.int64), np.ones(self.lookback, np.int64))[: len(x)]
            self._x[sym] = x
            self._ok[sym] = run == self.lookback
            self._ts[sym] = _ns(frame["ts"])

    def window(self, sym: str, j: int) -> np.ndarray | None:
        if not self._ok[sym][j]:
            return None
        return self._x[sym][j - self.lookback + 1 : j + 1]

    def closes(self, start: datetime | None = None) -> Iterator[ReplayClose]:
        """Bar closes in time order from the bar opening at or after ``start``."""
        rows = [
            (int(t), k, sym, j)
            for k, (sym, ts) in enumerate(self._ts.items())
            for j, t in enumerate(ts.tolist())
        ]
        rows.sort(key=lambda r: (r[0], r[1]))
        lo = None if start is None else pd.Timestamp(start).value
        i = 0
        while i < len(rows):
            t = rows[i][0]
            group = []
            while i < len(rows) and rows[i][0] == t:
                group.append(rows[i])
                i += 1
            if lo is not None and t < lo:
                continue
            bars, windows = {}, {}
            for _, _, sym, j in group:
                r = self.bars[sym].iloc[j]
                bars[sym] = Bar(
                    sym,
                    from_ns(t),
                    float(r["open"]),
                    float(r["high"]),
                    float(r["low"]),
                    float(r["close"]),
                    float(r["volume"]) if "volume" in r else 0.0,
                )
                w = self.window(sym, j)
                if w is not None:
                    windows[sym] = w
            yield ReplayClose(from_ns(t), bars, windows)

    def predict_frame(self, model: SignalModel, start: datetime | None = None) -> pd.DataFrame:
        """Every window's signal in one batched pass (``signals.csv`` columns)."""
        lo = None if start is None else pd.Timestamp(start).value
        out = []
        for sym, ts in self._ts.items():
            ends = np.flatnonzero(self._ok[sym] & (ts >= lo if lo is not None else True))
            if not len(ends):
                continue
            x = np.stack([self.window(sym, int(j)) for j in ends])
            probs = model.bundle.predict_proba(x, model.bundle.ticker_ids([sym] * len(ends)))
            acts = [action_of(p) for p in probs]
            out.append(
                pd.DataFrame(
                    {
                        "ts": pd.to_datetime(ts[ends], utc=True),
                        "ticker": sym,
                        "signal": [a.value for a, _ in acts],
                        "confidence": [c for _, c in acts],
                        "p_up": probs[:, 0],
                        "p_down": probs[:, 1],
                        "p_flat": probs[:, 2],
                        "model_version": model.version,
                    }
                )
            )
        if not out:
            return pd.DataFrame(columns=list(SIGNAL_CSV_COLUMNS))
        frame = pd.concat(out, ignore_index=True)
        return frame.sort_values(["ts", "ticker"], kind="stable").reset_index(drop=True)
