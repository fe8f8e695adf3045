"""FINRA OTC Transparency weekly ATS volume per symbol -> ``inst_volume`` flow points.

Input: FINRA's weekly summary as exported from its Query API (``otcMarket/weeklySummary``,
CSV or pipe-delimited), one row per symbol, venue (MPID) and week, with the columns
``issueSymbolIdentifier``, ``weekStartDate``, ``totalWeeklyShareQuantity``, a tier
(``tierIdentifier`` T1/T2/OTCE or ``tierDescription``) and optionally ``summaryTypeCode``
and ``lastUpdateDate``. With ``summaryTypeCode`` only the per-venue ATS rows
(``ATS_W_SMBL_FIRM``) are read (the other codes are totals or non-ATS OTC volume, which would
count shares twice); the venues of a symbol-week are summed.

Publication: FINRA publishes ATS data for NMS Tier 1 stocks two weeks after the week and for
Tier 2 / OTC equities four weeks after. ``published_at`` = the Monday after the week + that
delay, 00:00 New York, or the row's ``lastUpdateDate`` when that is later (a revised row is
known only from its update). ``ts`` = the week's start, 00:00 UTC.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from app.errors import InputError
from app.sources.flow_sources import NEW_YORK
from app.sources.side_batch import BadRow, SideBatch
from app.types import FlowPoint

REQUIRED = ("issueSymbolIdentifier", "weekStartDate", "totalWeeklyShareQuantity")
DELAY_WEEKS = {"T1": 2, "T2": 4, "OTCE": 4}
_TIER_NAMES = {"nms tier 1": "T1", "nms tier 2": "T2", "otc": "OTCE"}
ATS_FIRM_CODE = "ATS_W_SMBL_FIRM"


def ats_published_at(week_start: date, tier: str, last_update: date | None = None) -> datetime:
    """When the week's ATS volume is public (see the module docstring), in UTC."""
    monday_after = week_start - timedelta(days=week_start.weekday()) + timedelta(days=7)
    day = monday_after + timedelta(weeks=DELAY_WEEKS[tier])
    if last_update is not None and last_update > day:
        day = last_update
    return datetime.combine(day, time(0), tzinfo=NEW_YORK).astimezone(UTC)


def _tier(row: dict[str, str]) -> str:
    raw = (row.get("tierIdentifier") or "").strip().upper()
    if raw in DELAY_WEEKS:
        return raw
    named = _TIER_NAMES.get((row.get("tierDescription") or "").strip().lower())
    if named is None:
        raise BadRow("bad_tier")
    return named


def _day(raw: str | None, reason: str) -> date:
    try:
        return date.fromisoformat((raw or "").strip()[:10])
    except ValueError:
        raise BadRow(reason) from None


def parse_ats_weekly(
    text: str, *, where: str, symbols: Iterable[str] | None = None
) -> SideBatch[FlowPoint]:
    """``inst_volume`` (shares on ATSs, summed over venues) per symbol and week."""
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = "|" if first.count("|") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = list(reader.fieldnames or [])
    missing = [c for c in REQUIRED if c not in header]
    if "tierIdentifier" not in header and "tierDescription" not in header:
        missing.append("tierIdentifier|tierDescription")
    if missing:
        raise InputError(f"{where}: missing column(s) {missing} for FINRA weekly ATS data")
    wanted = frozenset(symbols) if symbols else None
    batch: SideBatch[FlowPoint] = SideBatch(where)
    shares: dict[tuple[str, date], float] = defaultdict(float)
    published: dict[tuple[str, date], datetime] = {}
    for row in reader:
        batch.rows_read += 1
        try:
            code = (row.get("summaryTypeCode") or ATS_FIRM_CODE).strip()
            if code != ATS_FIRM_CODE:
                raise BadRow("not_ats_venue_row")
            symbol = (row.get("issueSymbolIdentifier") or "").strip()
            if not symbol:
                raise BadRow("missing_symbol")
            if wanted is not None and symbol not in wanted:
                continue
            week = _day(row.get("weekStartDate"), "bad_week_start")
            raw_update = (row.get("lastUpdateDate") or "").strip()
            update = _day(raw_update, "bad_last_update") if raw_update else None
            try:
                quantity = float(row.get("totalWeeklyShareQuantity") or "")
            except ValueError:
                raise BadRow("bad_share_quantity") from None
            if not quantity >= 0:
                raise BadRow("bad_share_quantity")
            when = ats_published_at(week, _tier(row), update)
        except BadRow as bad:
            batch.rejected[bad.reason] += 1
            continue
        key = (symbol, week)
        shares[key] += quantity
        published[key] = max(published.get(key, when), when)
    for (symbol, week), total in sorted(shares.items()):
        ts = datetime(week.year, week.month, week.day, tzinfo=UTC)
        batch.items.append(FlowPoint(symbol, "inst_volume", ts, published[(symbol, week)], total))
    return batch
