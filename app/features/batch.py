"""The batch engine: the whole training matrix of one symbol in one vectorized pass."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from app.errors import InputError
from app.features.rolling import BAR_NS
from app.features.side_inputs import side_features
from app.features.spec import FeatureSpec, default_spec
from app.features.technical import technical_features
from app.types import AssetClass

BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def bar_arrays(bars: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray], str | None]:
    """(ts int64 ns, OHLCV float arrays, symbol or None) after checking the frame.

    A feature row per input bar is the contract, so a bad bar is an error naming the row and
    value (drop bad bars before, e.g. at ingest), not a silent gap.
    """
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise InputError(f"bars frame: missing columns {missing} (have {list(bars.columns)})")
    if not isinstance(bars["ts"].dtype, pd.DatetimeTZDtype):
        raise InputError(f"bars.ts: dtype {bars['ts'].dtype} is not tz-aware UTC datetime")
    ts = bars["ts"].astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").astype(np.int64)
    if len(ts) > 1:
        bad = np.flatnonzero(np.diff(ts) <= 0)
        if len(bad):
            row = int(bad[0]) + 1
            raise InputError(
                f"bars.ts row {row}={bars['ts'].iloc[row]}: not after the previous bar "
                f"{bars['ts'].iloc[row - 1]} (sort and de-duplicate first)"
            )
    values = {}
    for column in BAR_COLUMNS[1:]:
        arr = pd.to_numeric(bars[column], errors="coerce").to_numpy(np.float64)
        floor = 0.0 if column == "volume" else np.finfo(np.float64).tiny
        bad = np.flatnonzero(~np.isfinite(arr) | (arr < floor))
        if len(bad):
            row = int(bad[0])
            raise InputError(
                f"bars.{column} row {row}={bars[column].iloc[row]!r}: not a valid value"
            )
        values[column] = arr
    symbol = None
    if "symbol" in bars.columns and len(bars):
        symbols = pd.unique(bars["symbol"])
        if len(symbols) != 1:
            raise InputError(f"bars.symbol: one symbol per call, got {list(symbols)[:5]}")
        symbol = str(symbols[0])
    return ts, values, symbol


def build_features(
    bars: pd.DataFrame,
    *,
    asset_class: AssetClass,
    news: pd.DataFrame | None = None,
    macro: pd.DataFrame | None = None,
    flow: pd.DataFrame | None = None,
    spec: FeatureSpec | None = None,
) -> pd.DataFrame:
    """One row per input bar (same order and index): ``ts`` + ``spec.feature_names`` (float64).

    Technical columns may be NaN for the first ``spec.warmup_bars`` rows; side columns never
    are. Side rows that fail validation are dropped and counted in
    ``result.attrs["rejected_side_rows"]``.
    """
    asset_class = AssetClass(asset_class)
    spec = default_spec(asset_class) if spec is None else spec
    if spec.asset_class is not asset_class:
        raise InputError(
            f"asset_class={asset_class.value!r}: the spec was built for {spec.asset_class.value!r}"
        )
    ts_ns, ohlcv, symbol = bar_arrays(bars)
    columns = technical_features(
        ohlcv["open"], ohlcv["high"], ohlcv["low"], ohlcv["close"], ohlcv["volume"], spec
    )
    rejected: Counter[str] = Counter()
    columns.update(
        side_features(
            ts_ns + BAR_NS,
            symbol=symbol,
            spec=spec,
            news=news,
            macro=macro,
            flow=flow,
            rejected=rejected,
        )  # fmt: skip
    )
    # one block per column, no consolidation copy (a 1M-bar matrix is ~300 MB)
    data = {name: np.asarray(columns[name], dtype=np.float64) for name in spec.feature_names}
    frame = pd.DataFrame(data, index=bars.index, copy=False)
    frame.insert(0, "ts", bars["ts"].astype("datetime64[ns, UTC]").array)
    frame.attrs["rejected_side_rows"] = dict(rejected)
    return frame
