"""Dark-pool ratio end to end: real AAPL and SPY 5m bars + a hand-written FINRA daily file ->
``ingest-side --source finra_dark_pool`` -> DuckDB -> ``build_features`` (and the incremental
engine). The expected values are recomputed here from the CSV with the standard library."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from app.features.batch import build_features
from app.features.spec import default_spec
from app.store import open_store
from app.types import AssetClass
from tests.unit.features.feat_builders import assert_frames_close, replay, run_incremental

NY = ZoneInfo("America/New_York")
HEADER = "Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market"
SHARES = {1: 0.41, 2: 0.47, 4: 0.38}  # trading-day index -> off-exchange share we write
# (the bars start on Wednesday 2025-06-04: day 2 is a Friday, its report speaks for Monday)


def _independent_day_volumes(path) -> dict[date, int]:  # type: ignore[no-untyped-def]
    out: dict[date, int] = defaultdict(int)
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            ts = datetime.fromisoformat(row["ts"].replace("Z", "+00:00"))
            out[ts.astimezone(NY).date()] += int(float(row["volume"]))
    return dict(out)


@pytest.fixture(params=["AAPL", "SPY"])
def stocks(request, shared_data):  # type: ignore[no-untyped-def]
    path = shared_data / "stocks_yahoo_5m" / f"{request.param}_5m.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def test_dark_pool_ratio_from_finra_file_and_stored_bars(stocks, tmp_path, capsys) -> None:
    url = f"duckdb:///{tmp_path}/dp.db"
    frame = pd.read_csv(stocks, nrows=78 * 8)  # about eight trading days
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).astype("datetime64[ns, UTC]")
    symbol = stocks.name.split("_")[0]
    frame.insert(0, "symbol", symbol)
    store = open_store(url)
    try:
        store.write_bars(frame)
    finally:
        store.close()
    volumes = _independent_day_volumes(stocks)
    days = sorted({ts.astimezone(NY).date() for ts in frame["ts"]})
    covered = {days[i]: SHARES[i] for i in SHARES}
    finra_dir = tmp_path / "finra"
    finra_dir.mkdir()
    offexchange: dict[date, int] = {}
    for day, share in covered.items():
        offexchange[day] = int(volumes[day] * share)
        total = offexchange[day]
        rows = [HEADER, f"{day:%Y%m%d}|{symbol}|{total // 2}|1200|{total}|B,Q,N",
                f"{day:%Y%m%d}|ZZZZ|10|0|20|B,Q,N"]  # fmt: skip
        (finra_dir / f"CNMSshvol{day:%Y%m%d}.txt").write_text("\n".join(rows) + "\n")
    # a file for a day without bars: its ratio cannot be formed and is counted
    (finra_dir / "CNMSshvol20200102.txt").write_text(f"{HEADER}\n20200102|{symbol}|5|0|10|Q\n")

    argv = ["ingest-side", "--kind", "flow", "--source", "finra_dark_pool", "--path",
            str(finra_dir), "--symbol", symbol, "--store", url]  # fmt: skip
    code = main(argv)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, summary
    assert summary["rejected_by_reason"] == {"flow.dark_pool_no_consolidated_volume": 1}

    store = open_store(url)
    try:
        flow = store.read("flow", symbol)
        bars = store.read_bars(symbol)
    finally:
        store.close()
    points = flow[flow["kind"] == "dark_pool_ratio"].sort_values("ts")
    assert [t.date() for t in points["ts"]] == sorted(covered)  # exactly the covered days
    expected = [offexchange[d] / volumes[d] for d in sorted(covered)]
    assert points["value"].tolist() == pytest.approx(expected, rel=1e-12)
    published = [datetime.combine(d, time(18), tzinfo=NY) for d in sorted(covered)]
    assert list(points["published_at"]) == [pd.Timestamp(p) for p in published]

    spec = default_spec(AssetClass.STOCKS)
    batch = build_features(bars, asset_class=AssetClass.STOCKS, flow=flow, spec=spec)
    # independently, with the calendar: a covered day's report (public 18:00 New York, after
    # its regular session) is the one in force on every bar of the next trading day, which
    # here crosses a weekend; every other bar is neutral (0), the covered day's own included
    closes = (bars["ts"] + pd.Timedelta(minutes=5)).dt.tz_convert(NY)
    bar_day = [days.index(c.date()) for c in closes]  # trading-day index of each bar
    want = np.zeros(len(bars))
    for k, (day_index, close) in enumerate(zip(bar_day, closes, strict=True)):
        previous = days[day_index - 1] if day_index > 0 else None
        if previous in covered:
            assert close >= datetime.combine(previous, time(18), tzinfo=NY)  # from publication
            want[k] = offexchange[previous] / volumes[previous]
    got = batch["dark_pool_ratio"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0.0)  # bar by bar
    on = np.array([days[d - 1] in covered if d > 0 else False for d in bar_day])
    assert (got[on] > 0.0).all() and (got[~on] == 0.0).all() and on.sum() == 3 * 78
    assert {days[d] for d in np.array(bar_day)[on]} == {days[i + 1] for i in SHARES}
    # before its publication nothing of a day's report shows, not even on the day itself
    for day in covered:
        public = pd.Timestamp(datetime.combine(day, time(18), tzinfo=NY))
        share = offexchange[day] / volumes[day]
        assert (got[(closes < public).to_numpy()] != share).all()
    # the deviation column: the share minus the mean of the reports so far, same days in force
    shares = expected
    dev = batch["dark_pool_ratio_dev"].to_numpy()
    for k, day in enumerate(sorted(covered)):
        rows = np.array([bool(d) and days[d - 1] == day for d in bar_day])
        expected_dev = shares[k] - sum(shares[: k + 1]) / (k + 1)
        np.testing.assert_allclose(dev[rows], expected_dev, rtol=0, atol=1e-12)
    assert (dev[~on] == 0.0).all()

    per_bar = replay(bars["ts"], None, None, flow)
    assert_frames_close(run_incremental(spec, bars, per_bar), batch, rtol=1e-9)


def test_user_supplied_consolidated_volume(tmp_path, capsys) -> None:
    finra = tmp_path / "CNMSshvol20250602.txt"
    finra.write_text(f"{HEADER}\n20250602|AAPL|100|0|4000|Q\n20250602|MSFT|1|0|2|Q\n")
    vols = tmp_path / "vol.csv"
    vols.write_text("date,symbol,volume\n2025-06-02,AAPL,10000\n")
    url = f"duckdb:///{tmp_path}/v.db"
    argv = ["ingest-side", "--kind", "flow", "--source", "finra_dark_pool", "--path",
            str(finra), "--volume-path", str(vols), "--store", url]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rejected_by_reason"] == {"flow.dark_pool_no_consolidated_volume": 1}
    store = open_store(url)
    try:
        flow = store.read("flow")
    finally:
        store.close()
    ratio = flow[flow["kind"] == "dark_pool_ratio"]
    assert ratio["value"].tolist() == [0.4] and ratio["symbol"].tolist() == ["AAPL"]
    assert ratio["published_at"].iloc[0] == pd.Timestamp("2025-06-02T22:00:00Z")
    assert ratio["ts"].iloc[0] == pd.Timestamp(datetime(2025, 6, 2, tzinfo=UTC))


def test_dark_pool_ratio_from_finra_cdn_days(tmp_path, capsys) -> None:
    """The CDN path: weekdays fetched, a holiday's 404 listed, ratios over the stored bars."""
    from tests.builders import bars_frame
    from tests.unit.sources.side_loopback import Answer, LoopbackServer, text_answer

    url = f"duckdb:///{tmp_path}/cdn.db"
    bars = bars_frame(n=12 * 24 * 3, symbol="AAPL", start=datetime(2025, 6, 2, 4, tzinfo=UTC))
    store = open_store(url)
    try:
        store.write_bars(bars)
    finally:
        store.close()
    ny_day = pd.to_datetime(bars["ts"], utc=True).dt.tz_convert(NY).dt.date
    volume = bars["volume"].groupby(ny_day).sum()
    with LoopbackServer() as server:
        for day in (date(2025, 6, 2), date(2025, 6, 3)):
            off = int(volume[day] * 0.5)
            body = f"{HEADER}\n{day:%Y%m%d}|AAPL|{off // 3}|0|{off}|B,Q,N\n"
            server.route(f"/equity/regsho/daily/CNMSshvol{day:%Y%m%d}.txt",
                         text_answer(body, "text/plain"))  # fmt: skip
        server.route("/equity/regsho/daily/CNMSshvol20250604.txt", Answer(404))
        argv = ["ingest-side", "--kind", "flow", "--source", "finra_dark_pool", "--since",
                "2025-06-02", "--until", "2025-06-04", "--base-url", server.url, "--symbol",
                "AAPL", "--store", url, "--retries", "1", "--backoff", "0"]  # fmt: skip
        assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(summary["missing_inputs"]) == 1 and summary["rows_rejected"] == 0
    store = open_store(url)
    try:
        flow = store.read("flow", "AAPL")
    finally:
        store.close()
    ratio = flow[flow["kind"] == "dark_pool_ratio"].sort_values("ts")
    want = [int(volume[d] * 0.5) / volume[d] for d in (date(2025, 6, 2), date(2025, 6, 3))]
    assert ratio["value"].tolist() == pytest.approx(want, rel=1e-12)
