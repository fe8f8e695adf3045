"""``ingest_bars``: validated price bars -> the store, with each symbol's asset class.

The asset class recorded for a symbol is the one given (``--asset-class``), else the one
its input declares (a simulator manifest), else the configured universe's; a symbol none
of them knows is written without one. A class that contradicts the store's is an error
naming both, raised before any bar is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from app.config import Settings
from app.pipeline.bar_sources import FEED_SOURCES, BarBatch, BarRequest, read_feed
from app.schema.bars import REASONS
from app.store import TimeSeriesStore
from app.types import AssetClass


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ingest read, wrote and rejected (``to_dict()`` is the CLI's JSON summary)."""

    source: str
    store: str
    symbols: tuple[str, ...]
    inputs: int
    rows_read: int
    rows_written: int
    rows_rejected: int
    rejected_by_reason: Mapping[str, int]
    duplicates_skipped: int
    asset_classes: Mapping[str, AssetClass] = field(default_factory=dict)
    asset_class: AssetClass | None = None  # the one given, when given
    incomplete_bins_dropped: int | None = None  # only for 1-minute input

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "store": self.store,
            "symbols": list(self.symbols),
            "inputs": self.inputs,
        }
        if self.asset_class is not None:
            out["asset_class"] = self.asset_class.value
        out["asset_classes"] = {s: c.value for s, c in sorted(self.asset_classes.items())}
        if self.incomplete_bins_dropped is not None:
            out["incomplete_bins_dropped"] = self.incomplete_bins_dropped
        out.update(
            rows_read=self.rows_read,
            rows_written=self.rows_written,
            rows_rejected=self.rows_rejected,
            rejected_by_reason=dict(self.rejected_by_reason),
            duplicates_skipped=self.duplicates_skipped,
        )
        return out


def ingest_bars(
    settings: Settings,
    store: TimeSeriesStore,
    request: BarRequest,
    batches: Sequence[BarBatch] = (),
    *,
    rejects: Path | None = None,
) -> IngestResult:
    """Write ``batches`` (read beforehand from files) or the request's feed to ``store``.

    Feeds raise SourceUnavailable when they stay down; nothing is written then.
    """
    if request.source in FEED_SOURCES:
        batches = read_feed(request, settings, store)
    classes = asset_classes_of(batches, request.asset_class, settings)
    store.record_asset_classes(classes)
    written = [store.write_bars(b.result.good) for b in batches]
    if rejects is not None:
        write_rejects(rejects, batches)
    by_reason = {r: sum(b.result.counts.get(r, 0) for b in batches) for r in REASONS}
    rows_written = sum(written)
    return IngestResult(
        source=request.source,
        store=store.url,
        symbols=tuple(sorted({b.symbol for b in batches})),
        inputs=len(batches),
        asset_class=request.asset_class,
        asset_classes=classes,
        incomplete_bins_dropped=(
            sum(b.result.incomplete_bins_dropped for b in batches) if request.resample_1m else None
        ),
        rows_read=sum(b.result.rows_read for b in batches),
        rows_written=rows_written,
        rows_rejected=sum(b.result.rows_rejected for b in batches),
        rejected_by_reason={k: v for k, v in by_reason.items() if v},
        duplicates_skipped=sum(len(b.result.good) for b in batches) - rows_written,
    )


def asset_classes_of(
    batches: Sequence[BarBatch], given: AssetClass | None, settings: Settings
) -> dict[str, AssetClass]:
    """Per symbol: the given class, else the input's own, else the universe's (else none)."""
    universe = {a.symbol: a.asset_class for a in settings.universe}
    out: dict[str, AssetClass] = {}
    for batch in batches:
        cls = given or batch.asset_class or universe.get(batch.symbol)
        if cls is not None:
            out[batch.symbol] = AssetClass(cls)
    return out


def write_rejects(path: Path, batches: Sequence[BarBatch]) -> None:
    """Every rejected row with its input and symbol, as CSV."""
    frames = [b.result.rejects.assign(source=b.label, symbol=b.symbol) for b in batches]
    rejects = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    columns = ["source", "symbol", *[c for c in rejects.columns if c not in ("source", "symbol")]]
    path.parent.mkdir(parents=True, exist_ok=True)
    rejects.reindex(columns=columns).to_csv(path, index=False)
