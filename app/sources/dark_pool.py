"""Daily dark-pool ratio of a stock from FINRA's consolidated short-volume file.

FINRA's ``CNMSshvol<YYYYMMDD>.txt`` reports, per symbol, ``TotalVolume``: every share traded
off-exchange that day (reported to FINRA's trade-reporting facilities: ATSs, i.e. dark pools,
plus broker-dealer internalisation and other OTC prints). Over the day's consolidated volume
(all venues) it is the off-exchange share. It does not separate ATS volume from internalised
retail flow, and it says nothing about direction or who traded.

The ratio is published when FINRA's file is (``finra_published_at``: 18:00 New York of the
trading day); the day's bar volume is known at the close, before that. Consolidated volume is
the sum of the day's bar volume (New York trading day) unless the caller supplies it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import pandas as pd

from app.errors import InputError
from app.sources.flow_sources import NEW_YORK, finra_published_at
from app.sources.side_batch import BadRow, SideBatch
from app.types import FlowPoint

VolumeKey = tuple[str, date]  # (symbol, New York trading day)
VOLUME_COLUMNS = ("date", "symbol", "volume")


def daily_bar_volumes(bars: pd.DataFrame, symbol: str | None = None) -> dict[VolumeKey, float]:
    """(symbol, New York day) -> summed bar volume; ``symbol`` names bars without that column."""
    for column in ("ts", "volume"):
        if column not in bars.columns:
            raise InputError(f"bars: missing column {column!r} (have {list(bars.columns)})")
    if "symbol" in bars.columns:
        symbols = bars["symbol"].astype(str)
    elif symbol:
        symbols = pd.Series(symbol, index=bars.index)
    else:
        raise InputError("bars: no 'symbol' column and no symbol given")
    days = pd.to_datetime(bars["ts"], utc=True).dt.tz_convert(NEW_YORK).dt.date
    sums = bars["volume"].astype("float64").groupby([symbols, days]).sum()
    return {(str(s), d): float(v) for (s, d), v in sums.items()}


def read_consolidated_volumes(path: Path | str) -> dict[VolumeKey, float]:
    """A user's consolidated daily volume file: ``date,symbol,volume`` (ISO date)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"volume file {path} does not exist")
    out: dict[VolumeKey, float] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in VOLUME_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing} for a volume file")
        for n, row in enumerate(reader, start=2):
            try:
                day = date.fromisoformat(row["date"].strip())
                volume = float(row["volume"])
            except ValueError:
                raise InputError(
                    f"{path}:{n}: bad date {row['date']!r} or volume {row['volume']!r}"
                ) from None
            out[(row["symbol"].strip(), day)] = volume
    return out


def _ratio_point(point: FlowPoint, volumes: Mapping[VolumeKey, float]) -> list[FlowPoint]:
    day = point.ts.date()
    consolidated = volumes.get((point.symbol, day))
    if consolidated is None:
        raise BadRow("no_consolidated_volume")
    if not consolidated > 0:
        raise BadRow("zero_consolidated_volume")
    ratio = point.value / consolidated
    if ratio > 1.0:  # more off-exchange than all venues: the two volumes do not match
        raise BadRow("offexchange_above_consolidated")
    return [FlowPoint(point.symbol, "dark_pool_ratio", point.ts, finra_published_at(day), ratio)]


def dark_pool_ratios(
    finra: Iterable[FlowPoint], volumes: Mapping[VolumeKey, float], *, where: str = "finra"
) -> SideBatch[FlowPoint]:
    """One ``dark_pool_ratio`` per FINRA ``offexchange_volume`` point whose day has a volume.

    A day without consolidated volume (no bars stored) is counted in ``rejected``, not guessed;
    ``rows_read`` stays 0 (the FINRA rows were counted when the file was read).
    """
    batch: SideBatch[FlowPoint] = SideBatch(f"{where}:dark_pool_ratio")
    for point in finra:
        if point.kind != "offexchange_volume":
            continue
        try:
            batch.items.extend(_ratio_point(point, volumes))
        except BadRow as bad:
            batch.rejected[f"dark_pool_{bad.reason}"] += 1
    return batch
