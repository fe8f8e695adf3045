"""``build_feature_table``: one symbol's feature matrix from the store, written to Parquet.

Bars in ``[start, end)`` and, from ``side_lookback_days`` before the first bar (so decayed
sums and as-of values are warm), the symbol's scored news, the macro series its asset
class uses and its flow rows. The Parquet file carries the spec as JSON in its metadata
(key ``feature_spec``), so the file explains its columns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from app.config import Settings
from app.errors import InputError
from app.features.batch import build_features
from app.features.spec import FeatureSpec, default_spec
from app.pipeline.assets import store_asset_class
from app.store import TimeSeriesStore
from app.tuning.stored_news import read_or_none, scored_news
from app.types import AssetClass

SPEC_METADATA_KEY = b"feature_spec"


@dataclass(frozen=True, slots=True)
class FeatureTableResult:
    """What was built and from how many side rows (``to_dict()`` is the JSON summary)."""

    symbol: str
    asset_class: AssetClass
    out: Path
    side_rows: Mapping[str, int]
    rejected_side_rows: Mapping[str, int]
    rows: int
    columns: int
    feature_names: Sequence[str]
    warmup_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "asset_class": self.asset_class.value,
            "out": str(self.out),
            "side_rows": dict(self.side_rows),
            "rejected_side_rows": dict(self.rejected_side_rows),
            "rows": self.rows,
            "columns": self.columns,
            "feature_names": list(self.feature_names),
            "warmup_rows": self.warmup_rows,
        }


def build_feature_table(
    settings: Settings,
    store: TimeSeriesStore,
    symbol: str,
    out: Path,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    asset_class: AssetClass | None = None,
    side_lookback_days: float = 30.0,
    sentiment_model: str | None = None,
) -> FeatureTableResult:
    """Features of ``symbol`` (asset class from the store; ``asset_class`` must agree)."""
    if side_lookback_days < 0:
        raise InputError(f"--side-lookback-days={side_lookback_days}: must be >= 0")
    asset_class = store_asset_class(store, symbol, asset_class, settings)
    spec = default_spec(asset_class, topics=tuple(settings.sentiment.topics))
    bars = store.read_bars(symbol, start, end)
    if bars.empty:
        raise InputError(f"--symbol={symbol!r}: no bars in the store for [{start}, {end})")
    side_start = bars["ts"].iloc[0].to_pydatetime() - timedelta(days=side_lookback_days)
    news = scored_news(store, symbol, spec, side_start, end, sentiment_model, settings=settings)
    macro = read_or_none(store, "macro", None, side_start, end)
    if macro is not None:
        series = {spec.fear_greed_series, spec.implied_vol_series} - {""}
        macro = macro[macro["symbol"].isin(series)]
    flow = read_or_none(store, "flow", symbol, side_start, end)
    frame = build_features(
        bars, asset_class=asset_class, news=news, macro=macro, flow=flow, spec=spec
    )
    write_parquet(frame, spec, out)
    return FeatureTableResult(
        symbol=symbol,
        asset_class=asset_class,
        out=out,
        side_rows={
            "news": 0 if news is None else len(news),
            "macro": 0 if macro is None else len(macro),
            "flow": 0 if flow is None else len(flow),
        },
        rejected_side_rows={
            **frame.attrs.get("rejected_side_rows", {}),
            **({} if news is None else news.attrs.get("rejected_side_rows", {})),
        },
        rows=len(frame),
        columns=len(frame.columns),
        feature_names=tuple(spec.feature_names),
        warmup_rows=min(spec.warmup_bars, len(frame)),
    )


def write_parquet(frame: pd.DataFrame, spec: FeatureSpec, out: Path) -> None:
    """Parquet with the spec in the schema metadata, so the file explains its columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[SPEC_METADATA_KEY] = json.dumps(spec.to_dict()).encode()
    pq.write_table(table.replace_schema_metadata(metadata), out)
