"""FINRA weekly ATS volume -> ``inst_volume`` -> ``inst_volume_norm`` on the real AAPL bars,
used only from its publication (two weeks after the week for Tier 1, four for Tier 2)."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from app.errors import InputError
from app.features.batch import build_features
from app.features.spec import default_spec
from app.sources.ats_weekly import parse_ats_weekly
from app.store import open_store
from app.types import AssetClass
from tests.unit.features.feat_builders import (
    assert_frames_close,
    read_ohlcv,
    replay,
    run_incremental,
)

NY = ZoneInfo("America/New_York")
HEADER = ("tierIdentifier|issueSymbolIdentifier|issueName|marketParticipantName|MPID|"
          "totalWeeklyShareQuantity|totalWeeklyTradeCount|lastUpdateDate|weekStartDate|"
          "summaryTypeCode")  # fmt: skip
WEEKS = [date(2025, 6, 2) + timedelta(weeks=k) for k in range(6)]
VENUES = {"SGMT": (1_000_000, 90_000), "UBSA": (700_000, 50_000)}  # base, weekly step


def _weekly_file() -> tuple[str, dict[date, float]]:
    lines, totals = [HEADER], {}
    for k, week in enumerate(WEEKS):
        totals[week] = 0.0
        for mpid, (base, step) in VENUES.items():
            qty = base + step * k * (-1) ** k
            totals[week] += qty
            lines.append(f"T1|AAPL|Apple Inc.|{mpid} ATS|{mpid}|{qty}|{qty // 100}|"
                         f"{week + timedelta(days=14)}|{week}|ATS_W_SMBL_FIRM")  # fmt: skip
        lines.append(f"T1|AAPL|Apple Inc.|ALL|ALL|{int(totals[week])}|1|{week}|{week}|ATS_W_SMBL")
        lines.append(f"T2|XYZ|Xyz|SGMT ATS|SGMT|5|1|{week}|{week}|ATS_W_SMBL_FIRM")
    return "\n".join(lines) + "\n", totals


def test_publication_delay_per_tier() -> None:
    week = date(2025, 6, 2)  # Monday; the week's data is public two (T1) / four (T2) weeks on
    assert ats_pub(week, "T1") == datetime(2025, 6, 23, 4, tzinfo=UTC)
    assert ats_pub(week, "T2") == datetime(2025, 7, 7, 4, tzinfo=UTC)
    assert ats_pub(week, "T1", date(2025, 7, 1)) == datetime(2025, 7, 1, 4, tzinfo=UTC)


def ats_pub(week: date, tier: str, update: date | None = None) -> datetime:
    from app.sources.ats_weekly import ats_published_at

    return ats_published_at(week, tier, update)


def test_a_file_without_week_start_is_refused() -> None:
    with pytest.raises(InputError, match="weekStartDate"):
        parse_ats_weekly("tierIdentifier|issueSymbolIdentifier|totalWeeklyShareQuantity\n",
                         where="x.psv")  # fmt: skip


def test_ats_volume_feeds_inst_volume_norm_from_publication(shared_data, tmp_path, capsys):
    bars_path = shared_data / "stocks_yahoo_5m" / "AAPL_5m.csv"
    if not bars_path.is_file():
        pytest.skip(f"{bars_path} not found")
    text, totals = _weekly_file()
    path = tmp_path / "weekly.psv"
    path.write_text(text)
    url = f"duckdb:///{tmp_path}/ats.db"
    argv = ["ingest-side", "--kind", "flow", "--source", "finra_ats", "--path", str(path),
            "--symbol", "AAPL", "--store", url]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rejected_by_reason"] == {"flow.not_ats_venue_row": 6}
    store = open_store(url)
    try:
        flow = store.read("flow", "AAPL")
    finally:
        store.close()
    points = flow.sort_values("ts")
    assert points["value"].tolist() == [totals[w] for w in WEEKS]  # venues summed, once
    pubs = [datetime(w.year, w.month, w.day, tzinfo=NY) + timedelta(days=21) for w in WEEKS]
    assert list(points["published_at"]) == [pd.Timestamp(p) for p in pubs]

    bars = read_ohlcv(bars_path, n=1800)
    spec = default_spec(AssetClass.STOCKS)
    batch = build_features(bars, asset_class=AssetClass.STOCKS, flow=flow, spec=spec)
    closes = bars["ts"] + pd.Timedelta(minutes=5)
    values = [totals[w] for w in WEEKS]
    want = np.zeros(len(bars))
    for k, when in enumerate(pubs):
        known = values[: k + 1]
        mean = sum(known) / len(known)
        std = math.sqrt(sum((x - mean) ** 2 for x in known) / len(known))
        z = (known[-1] - mean) / std if len(known) > 1 and std > 0 else 0.0
        want[(closes >= pd.Timestamp(when)).to_numpy()] = z
    assert (closes.iloc[-1] > pd.Timestamp(pubs[2])) and (closes.iloc[0] < pd.Timestamp(pubs[0]))
    np.testing.assert_allclose(batch["inst_volume_norm"].to_numpy(), want, rtol=0, atol=1e-12)
    assert (batch["inst_volume_norm"] != 0).any()
    assert_frames_close(run_incremental(spec, bars, replay(bars["ts"], None, None, flow)),
                        batch, rtol=1e-9)  # fmt: skip
