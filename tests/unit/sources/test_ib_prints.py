"""IB ``AllLast`` ticks (ib_async's own objects) -> prints -> blocks -> stock features."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from ib_async.objects import HistoricalTickLast, TickAttribLast, TickByTickAllLast

from app.features.batch import build_features
from app.features.spec import default_spec
from app.sources.ib_prints import ib_tick_prints
from app.sources.side_batch import flow_frame
from app.sources.trade_prints import BlockRule, print_events
from app.types import AssetClass
from tests.builders import bars_frame
from tests.unit.features.feat_builders import assert_frames_close, replay, run_incremental

T0 = datetime(2025, 1, 6, 14, 30, tzinfo=UTC)


def _ticks(n: int) -> list[TickByTickAllLast]:
    rng = np.random.default_rng(2)
    sizes = rng.integers(1, 400, n).astype(float)
    sizes[[150, 260, 330]] = 60_000.0
    ok = TickAttribLast(pastLimit=False, unreported=False)
    return [TickByTickAllLast(2, T0 + timedelta(seconds=11 * i), 150.0 + i * 0.01, sizes[i],
                              ok, "NYSE", "") for i in range(n)]  # fmt: skip


def test_all_last_ticks_map_to_prints_and_blocks() -> None:
    ticks = _ticks(400)
    ticks.append(TickByTickAllLast(2, T0 + timedelta(hours=3), 150.0, 90_000.0,
                                   TickAttribLast(unreported=True), "FINRA", ""))  # fmt: skip
    ticks.append(TickByTickAllLast(3, T0, 150.0, 5.0, TickAttribLast(), "", ""))  # a bid/ask
    prints, rejected = ib_tick_prints("AAPL", ticks)
    assert len(prints) == 400 and rejected == {"unreported": 1, "not_a_last_tick": 1}
    assert prints[0].ts == T0 and prints[0].size == ticks[0].size

    events = print_events(prints, BlockRule(measure="notional", floor=1e6))
    blocks = [e for e in events if e.kind == "block_trade"]
    assert [b.ts for b in blocks] == [T0 + timedelta(seconds=11 * i) for i in (150, 260, 330)]

    bars = bars_frame(n=120, symbol="AAPL", start=T0 - timedelta(minutes=30))
    flow = flow_frame(events)
    spec = default_spec(AssetClass.STOCKS)
    batch = build_features(bars, asset_class=AssetClass.STOCKS, flow=flow, spec=spec)
    assert batch["block_trade_flag"].sum() == 3 and batch["trade_size_dev"].nunique() > 5
    closes = bars["ts"] + pd.Timedelta(minutes=5)
    assert (batch["trade_size_dev"][closes < pd.Timestamp(T0)] == 0.0).all()
    assert_frames_close(run_incremental(spec, bars, replay(bars["ts"], None, None, flow)),
                        batch, rtol=1e-9)  # fmt: skip


def test_historical_trades_ticks_map_as_last_prints() -> None:
    hidden = TickAttribLast(unreported=True)
    ticks = [HistoricalTickLast(T0, TickAttribLast(), 150.0, 300.0, "NYSE", ""),
             HistoricalTickLast(T0, hidden, 150.0, 9e4, "FINRA", "")]  # fmt: skip
    prints, rejected = ib_tick_prints("AAPL", ticks)
    assert [(p.ts, p.size) for p in prints] == [(T0, 300.0)] and rejected == {"unreported": 1}
