"""The paper venue's state on disk: an append-only log of calls plus snapshots restores exactly
the state an uninterrupted venue has (with and without a clean close, across snapshots, with a
torn last line); ``RunningATR`` equals ``wilder_atr`` bit for bit."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app.broker.fill_model import RunningATR, wilder_atr
from app.broker.paper import PaperBroker
from app.types import AssetClass, Bar, Order, Side

SYMS = {"BTCUSDT": AssetClass.CRYPTO, "ETHUSDT": AssetClass.CRYPTO}
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _bars(n: int, seed: int = 0) -> list[Bar]:
    rng = np.random.default_rng(seed)
    out = []
    for sym, p0 in (("BTCUSDT", 50_000.0), ("ETHUSDT", 3_000.0)):
        c = p0 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
        for i in range(n):
            o = c[i - 1] if i else p0
            hi, lo = max(o, c[i]) * (1 + rng.uniform(0, 0.003)), min(o, c[i]) * 0.998
            out.append(Bar(sym, T0 + timedelta(minutes=5 * i), o, hi, lo, float(c[i]), 1.0))
    return sorted(out, key=lambda b: (b.ts, b.symbol))


async def _drive(broker: PaperBroker, bars: list[Bar], start: int) -> None:
    """Entries with brackets, closes, a cancel: every kind of call that changes the state."""
    for k, bar in enumerate(bars, start):
        await broker.on_bar(bar)
        i = k // 2
        if bar.symbol != "BTCUSDT" or i % 7:
            continue
        held = broker.pf.qty("BTCUSDT")
        if held == 0.0:
            p = bar.close
            o = Order(
                f"e{i}", "BTCUSDT", Side.BUY, 0.1, bar.ts, stop_loss=p * 0.99, take_profit=p * 1.01
            )
            await broker.submit(o)
            await broker.submit(o)  # a resend of a known id changes nothing
        else:
            await broker.submit(
                Order(f"c{i}", "BTCUSDT", Side.SELL, held, bar.ts, reduce_only=True)
            )
        if i % 21 == 0:
            await broker.submit(Order(f"x{i}", "ETHUSDT", Side.BUY, 1.0, bar.ts))
            await broker.cancel(f"x{i}", "ETHUSDT")


def _j(broker: PaperBroker) -> str:
    """The state as stored (NaNs compare equal; numpy and Python floats alike)."""
    return json.dumps(broker._state(), sort_keys=True)


def _run(broker: PaperBroker, bars: list[Bar], start: int = 0) -> PaperBroker:
    asyncio.run(_drive(broker, bars, start))
    return broker


def test_a_restart_from_the_log_equals_the_uninterrupted_venue(tmp_path) -> None:
    bars = _bars(150)
    ref = _run(PaperBroker(SYMS), bars)  # no file at all
    assert len(ref.fills) > 10
    path = tmp_path / "paper.json"
    crashed = _run(PaperBroker(SYMS, state_path=path), bars[:200])  # no close(): a crash
    assert not path.exists() and path.with_suffix(".ops.jsonl").stat().st_size > 0
    back = PaperBroker(SYMS, state_path=path)
    assert _j(back) == _j(crashed)
    _run(back, bars[200:], 200)
    assert _j(back) == _j(ref)
    asyncio.run(back.close())  # a clean close writes a snapshot and empties the log
    assert path.with_suffix(".ops.jsonl").read_text() == ""
    assert _j(PaperBroker(SYMS, state_path=path)) == _j(ref)


def test_snapshots_every_n_calls_and_a_torn_last_line(tmp_path) -> None:
    bars = _bars(60, seed=1)
    path = tmp_path / "paper.json"
    live = _run(PaperBroker(SYMS, state_path=path, snapshot_every=7), bars)
    ops = path.with_suffix(".ops.jsonl")
    assert path.exists() and len(ops.read_text().splitlines()) < 7
    assert json.loads(path.read_text())["log_seq"] > 0
    assert _j(PaperBroker(SYMS, state_path=path)) == _j(live)
    with ops.open("a") as fh:
        fh.write('{"seq": 99999, "op": "ba')  # a crash in the middle of a write
    assert _j(PaperBroker(SYMS, state_path=path)) == _j(live)


def test_lines_the_snapshot_already_holds_are_skipped(tmp_path) -> None:
    path = tmp_path / "paper.json"
    live = _run(PaperBroker(SYMS, state_path=path, snapshot_every=10_000), _bars(40, seed=2))
    ops = path.with_suffix(".ops.jsonl")
    kept = ops.read_text()
    live._log.snapshot(live._state())  # a crash right after the snapshot, before truncation:
    ops.write_text(kept)
    assert _j(PaperBroker(SYMS, state_path=path)) == _j(live)


@pytest.mark.parametrize("period", [1, 3, 14])
def test_running_atr_equals_wilder_atr_bit_for_bit(period: int) -> None:
    rng = np.random.default_rng(period)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 2000)))
    h, lo = c * (1 + rng.uniform(0, 0.01, c.size)), c * (1 - rng.uniform(0, 0.01, c.size))
    atr = RunningATR(period)
    got = np.array(
        [atr.update(float(a), float(b), float(d)) for a, b, d in zip(h, lo, c, strict=True)]
    )
    np.testing.assert_array_equal(got, wilder_atr(h, lo, c, period))
    assert RunningATR.over(h, lo, c, period).atr == got[-1]
