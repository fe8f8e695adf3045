"""Simulator: determinism, calendars, bar invariants, side inputs and causality of the drift."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from app.sim.config import SimConfig
from app.sim.drift import drift_parts
from app.sim.headlines import mentions
from app.sim.market import SimulatedMarket
from app.sim.result import SimulationResult
from app.sim.templates import TOPICS
from app.types import AssetClass, Bar

NY = "America/New_York"


@pytest.fixture(scope="module")
def sim() -> SimulationResult:
    # Monday 2025-03-03 .. 2025-03-16: spans the US DST switch on Sunday 2025-03-09
    return SimulatedMarket(
        SimConfig(seed=11, days=14, start=datetime(2025, 3, 3, tzinfo=UTC))
    ).run()


def _close_ns(frame: pd.DataFrame) -> np.ndarray:
    return pd.DatetimeIndex(frame["ts"]).asi8 + 300 * 10**9


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_output_and_different_seed_differs() -> None:
    cfg = SimConfig(seed=3, days=3)
    a, b = SimulatedMarket(cfg).run(), SimulatedMarket(cfg).run()
    for sym in a.bars:
        pd.testing.assert_frame_equal(a.bars[sym], b.bars[sym], check_exact=True)
        pd.testing.assert_frame_equal(a.oracle[sym], b.oracle[sym], check_exact=True)
    assert a.news == b.news and a.macro == b.macro and a.flow == b.flow
    c = SimulatedMarket(dataclasses.replace(cfg, seed=4)).run()
    assert not np.array_equal(a.bars["BTCUSDT"]["close"], c.bars["BTCUSDT"]["close"])
    assert [n.title for n in a.news] != [n.title for n in c.news]


# --------------------------------------------------------------------------- calendars


def test_stock_bars_only_in_the_regular_session(sim: SimulationResult) -> None:
    local = sim.bars["AAPL"]["ts"].dt.tz_convert(NY)
    minutes = local.dt.hour * 60 + local.dt.minute
    assert ((minutes >= 570) & (minutes < 960)).all()
    assert (local.dt.weekday < 5).all()
    per_day = local.dt.date.value_counts()
    assert (per_day == 78).all() and len(per_day) == 10
    # DST: the open is 14:30 UTC before 2025-03-09 and 13:30 UTC after
    first_utc = sim.bars["AAPL"].groupby(local.dt.date)["ts"].min()
    assert first_utc.iloc[0].hour == 14 and first_utc.iloc[-1].hour == 13


def test_stock_calendar_skips_us_holidays() -> None:
    res = SimulatedMarket(
        SimConfig.for_symbols(["AAPL"], days=7, start=datetime(2025, 1, 17, tzinfo=UTC))
    ).run()
    dates = set(res.bars["AAPL"]["ts"].dt.tz_convert(NY).dt.date)
    assert datetime(2025, 1, 20).date() not in dates  # Martin Luther King Jr. Day
    assert datetime(2025, 1, 21).date() in dates


def test_forex_week_runs_sunday_17_to_friday_17_new_york(sim: SimulationResult) -> None:
    local = sim.bars["EURUSD"]["ts"].dt.tz_convert(NY)
    minutes = local.dt.hour * 60 + local.dt.minute
    assert not (local.dt.weekday == 5).any()
    assert not ((local.dt.weekday == 4) & (minutes >= 1020)).any()
    assert not ((local.dt.weekday == 6) & (minutes < 1020)).any()
    assert not (sim.bars["EURUSD"]["ts"].dt.weekday == 5).any()  # no Saturday in UTC either
    assert ((local.dt.weekday == 6) & (minutes == 1020)).any()  # the Sunday open is there


def test_crypto_is_continuous(sim: SimulationResult) -> None:
    ts = sim.bars["BTCUSDT"]["ts"]
    assert len(ts) == 14 * 288
    assert (ts.diff().dropna() == pd.Timedelta(minutes=5)).all()


# --------------------------------------------------------------------------- bars


def test_every_bar_is_a_valid_domain_bar_and_nothing_is_nan(sim: SimulationResult) -> None:
    for sym, frame in sim.bars.items():
        assert list(frame.columns) == ["symbol", "ts", "open", "high", "low", "close", "volume"]
        assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
        assert not frame.isna().any().any()
        assert not sim.oracle[sym].isna().any().any()
        assert (frame["volume"] > 0).all()
        for row in frame.itertuples(index=False):
            Bar(
                row.symbol,
                row.ts.to_pydatetime(),
                row.open,
                row.high,
                row.low,
                row.close,
                row.volume,
            )
        # wicks exist, not just open/close
        assert (frame["high"] > frame[["open", "close"]].max(axis=1)).mean() > 0.8


def test_price_levels_and_volatility_are_realistic(sim: SimulationResult) -> None:
    first = {s: f["open"].iloc[0] for s, f in sim.bars.items()}
    assert first == {"BTCUSDT": 60000.0, "ETHUSDT": 3000.0, "AAPL": 200.0, "EURUSD": 1.08}
    vol = {s: np.log(f["close"]).diff().std() for s, f in sim.bars.items()}
    assert 0.0005 < vol["BTCUSDT"] < 0.004
    assert 0.00005 < vol["EURUSD"] < 0.0008
    assert vol["EURUSD"] < vol["AAPL"] < vol["ETHUSDT"]


def test_stock_intraday_volatility_is_u_shaped(sim: SimulationResult) -> None:
    f = sim.bars["AAPL"]
    local = f["ts"].dt.tz_convert(NY)
    absret = np.log(f["close"] / f["open"]).abs()
    by_slot = absret.groupby(local.dt.hour * 60 + local.dt.minute).mean()
    assert by_slot.iloc[:3].mean() > 1.3 * by_slot.iloc[30:48].mean()  # open vs lunch
    assert by_slot.iloc[-3:].mean() > 1.2 * by_slot.iloc[30:48].mean()  # close vs lunch


# --------------------------------------------------------------------------- side inputs


def test_headlines_name_their_asset_and_vary(sim: SimulationResult) -> None:
    assets = {a.symbol: a for a in SimConfig().assets}
    days = 14
    for sym, asset in assets.items():
        mine = [n for n in sim.news if n.symbols == (sym,)]
        assert len(mine) > 5 * days  # several per asset per day
        forms = mentions(asset)
        assert all(any(f.lower() in n.title.lower() for f in forms) for n in mine)
        assert all(n.topic in TOPICS and -1 <= n.true_sentiment <= 1 for n in mine)
        used_forms = {f for n in mine for f in forms if f in n.title}
        assert len(used_forms) >= 2
        assert len({n.title for n in mine}) > 0.5 * len(mine)
        sentiments = np.array([n.true_sentiment for n in mine])
        assert (sentiments > 0.2).any() and (sentiments < -0.2).any()
    assert len({n.id for n in sim.news}) == len(sim.news)
    times = [n.published_at for n in sim.news]
    assert times == sorted(times)


def test_flow_vocabulary_per_asset_class(sim: SimulationResult) -> None:
    kinds: dict[str, set[str]] = {}
    for f in sim.flow:
        kinds.setdefault(f.symbol, set()).add(f.kind)
        assert f.published_at >= f.ts
    assert kinds["BTCUSDT"] == {
        "exchange_inflow",
        "exchange_outflow",
        "exchange_net_flow",
        "whale_transfers",
    }
    assert kinds["AAPL"] == {"dark_pool_ratio", "block_trade"}
    assert "EURUSD" not in kinds  # forex: news and macro only
    ratios = [f.value for f in sim.flow if f.kind == "dark_pool_ratio"]
    assert 0 < min(ratios) and max(ratios) < 1
    frame = sim.flow_frame()
    assert list(frame.columns) == ["symbol", "ts", "kind", "published_at", "value"]
    assert str(frame["published_at"].dtype) == "datetime64[ns, UTC]"


def test_fear_greed_is_daily_published_at_midnight_for_the_previous_day(
    sim: SimulationResult,
) -> None:
    for name in ("fear_greed_crypto", "fear_greed_stocks"):
        points = [m for m in sim.macro if m.name == name]
        assert len(points) == 15  # one per day plus the print at the end of the run
        for m in points:
            assert m.published_at - m.ts == timedelta(days=1)
            assert (m.published_at.hour, m.published_at.minute) == (0, 0)
            assert 0 <= m.value <= 100
    frame = sim.macro_frame()
    assert list(frame.columns) == ["symbol", "ts", "published_at", "value"]


def test_fear_greed_follows_the_day_returns() -> None:
    res = SimulatedMarket(SimConfig.for_symbols(["BTCUSDT", "ETHUSDT"], seed=5, days=60)).run()
    fg = {m.ts: m.value for m in res.macro if m.name == "fear_greed_crypto"}
    change, day_ret = [], []
    bars = res.bars["BTCUSDT"]
    lr = np.log(bars["close"]).diff().fillna(0.0)
    by_day = lr.groupby(
        (bars["ts"] + pd.Timedelta(minutes=5) - pd.Timedelta(nanoseconds=1)).dt.floor("D")
    ).sum()
    for day, ret in by_day.items():
        prev = day - pd.Timedelta(days=1)
        if day.to_pydatetime() in fg and prev.to_pydatetime() in fg:
            change.append(fg[day.to_pydatetime()] - fg[prev.to_pydatetime()])
            day_ret.append(ret)
    assert len(change) > 50
    assert np.corrcoef(change, day_ret)[0, 1] > 0.3


# --------------------------------------------------------------------------- causality


def test_oracle_drift_is_recomputed_from_side_inputs_alone(sim: SimulationResult) -> None:
    cfg = SimConfig()
    for asset in cfg.assets:
        o = sim.oracle[asset.symbol]
        parts = drift_parts(asset, _close_ns(o), sim.news, sim.flow, sim.macro, cfg.effects)
        z = parts.z(cfg.effects)
        np.testing.assert_array_equal(o["sigma"].to_numpy() * z, o["mu"].to_numpy())
        assert np.std(z) > 0.15  # the effect is really there


def _perturbed(sim: SimulationResult, after_ns: int) -> tuple[list, list, list]:
    """Flip every headline, triple every flow and max out every F&G print published after
    ``after_ns``; keep the rest."""

    def late(dt: datetime) -> bool:
        return int(pd.Timestamp(dt).value) > after_ns

    news = [
        dataclasses.replace(n, true_sentiment=-(n.true_sentiment or 0.0) or 0.9)
        if late(n.published_at)
        else n
        for n in sim.news
    ]
    flow = [
        dataclasses.replace(f, value=f.value * 3 + 1) if late(f.published_at) else f
        for f in sim.flow
    ]
    macro = [dataclasses.replace(m, value=99.0) if late(m.published_at) else m for m in sim.macro]
    return news, flow, macro


def _publications(sim: SimulationResult, symbol: str, modality: str) -> np.ndarray:
    """Publication times (ns) of the items of one modality that can move ``symbol``."""
    if modality == "news":
        times = [n.published_at for n in sim.news if symbol in n.symbols]
    elif modality == "flow":
        planted = ("exchange_net_flow", "dark_pool_ratio")  # the kinds that carry drift
        times = [f.published_at for f in sim.flow if f.symbol == symbol and f.kind in planted]
    else:
        times = [m.published_at for m in sim.macro]
    return np.array([pd.Timestamp(t).value for t in times], dtype=np.int64)


@pytest.mark.parametrize("modality", ["news", "flow", "macro"])
def test_nothing_published_after_a_bar_close_moves_its_drift(
    sim: SimulationResult, modality: str
) -> None:
    """Cut just before real publications (the tightest case: the item lands in the next bar)
    and change everything published after the cut: the drift up to the cut must not move."""
    cfg = SimConfig()
    checked = 0
    for asset in cfg.assets:
        close_ns = _close_ns(sim.oracle[asset.symbol])
        base = drift_parts(asset, close_ns, sim.news, sim.flow, sim.macro, cfg.effects)
        pubs = _publications(sim, asset.symbol, modality)
        pubs = pubs[(pubs > close_ns[0]) & (pubs <= close_ns[-1])]
        for pub in pubs[:: max(1, pubs.size // 4)][:4]:
            t = int(np.searchsorted(close_ns, pub, side="left")) - 1  # last close < pub
            news, flow, macro = _perturbed(sim, int(close_ns[t]))
            moved = drift_parts(asset, close_ns, news, flow, macro, cfg.effects)
            for name in ("news", "flow", "fear_greed"):
                before, after = getattr(base, name), getattr(moved, name)
                np.testing.assert_array_equal(after[: t + 1], before[: t + 1], err_msg=name)
            # the perturbation is real: the bar that first sees the item moves
            assert not np.array_equal(base.z(cfg.effects)[t + 1], moved.z(cfg.effects)[t + 1])
            checked += 1
    assert checked >= (8 if modality != "flow" else 4)


def test_an_item_published_exactly_at_a_close_counts_for_that_bar(sim: SimulationResult) -> None:
    asset = SimConfig().assets[0]  # BTCUSDT: hourly flow published on the hour = a bar close
    close_ns = _close_ns(sim.oracle[asset.symbol])
    cfg = SimConfig()
    base = drift_parts(asset, close_ns, sim.news, sim.flow, sim.macro, cfg.effects)
    pub = pd.Timestamp(next(f.published_at for f in sim.flow if f.kind == "exchange_net_flow"))
    t = int(np.searchsorted(close_ns, pub.value))
    assert close_ns[t] == pub.value
    _, flow, _ = _perturbed(sim, int(close_ns[t]) - 1)  # perturb items from close_t on
    moved = drift_parts(asset, close_ns, sim.news, flow, sim.macro, cfg.effects)
    np.testing.assert_array_equal(moved.flow[:t], base.flow[:t])
    assert moved.flow[t] != base.flow[t]


def test_truncated_run_gives_the_same_drift_prefix() -> None:
    start = datetime(2025, 3, 3, tzinfo=UTC)
    short = SimulatedMarket(SimConfig(seed=21, days=5, start=start)).run()
    long = SimulatedMarket(SimConfig(seed=21, days=9, start=start)).run()
    for sym, o_short in short.oracle.items():
        n = len(o_short)
        o_long = long.oracle[sym].iloc[:n].reset_index(drop=True)
        for col in ("ts", "mu", "sigma", "theta"):
            pd.testing.assert_series_equal(o_short[col], o_long[col], check_exact=True)
        np.testing.assert_array_equal(
            short.bars[sym]["close"].to_numpy(), long.bars[sym]["close"].to_numpy()[:n]
        )
    assert [m for m in short.macro] == long.macro[: len(short.macro)]


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="days"):
        SimConfig(days=0)
    with pytest.raises(ValueError, match="t_df"):
        SimConfig(t_df=3.0)
    with pytest.raises(ValueError, match="NOPE"):
        SimConfig.for_symbols(["BTCUSDT", "NOPE"])
    with pytest.raises(ValueError, match="naive"):
        SimConfig(start=datetime(2025, 1, 1))  # noqa: DTZ001
    assert SimConfig().symbols_by_class[AssetClass.CRYPTO] == ("BTCUSDT", "ETHUSDT")
