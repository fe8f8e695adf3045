"""A real signal API for the panel's callback tests, fed by a replay of simulator data.

A light stand-in for the live worker (the browser test runs the real one, live_worker.py), so
the callbacks can be stepped bar by bar and checked against exact state: the seeded simulator's bars
and headlines go bar by bar into a ``MemoryLiveView`` and a ``MarketTape``; the simulator's
oracle probabilities play the model; the real ``RiskEngine`` decides; orders fill at the next
bar's open with a fee (paper). uvicorn serves ``build_api(view)`` plus the bars/headlines and
run-info, feed-switch and jobs routes (``build_worker_api``, as the worker mounts them) on
127.0.0.1 (a free port) in a thread. A stopped crypto feed hands the replay's bars to nobody.
"""

from __future__ import annotations

import math
import secrets
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import uvicorn

from app.clock import ReplayClock
from app.config import Settings, load_settings
from app.risk.engine import RiskEngine
from app.risk.snapshots import MarketSnapshot, PortfolioSnapshot
from app.serve.feed_control import FeedSwitch
from app.serve.jobs import JobBoard, JobSpec, LocalJobRunner
from app.serve.market import MarketTape, ScoredHeadline
from app.serve.memory import MemoryLiveView
from app.serve.run_info import RunInfo
from app.serve.view import ClosedTrade
from app.serve.worker_api import build_worker_api
from app.sim.config import SimConfig
from app.sim.market import SimulatedMarket
from app.sim.result import SimulationResult
from app.types import (
    BAR_INTERVAL,
    AssetClass,
    Bar,
    Fill,
    Order,
    OrderStatus,
    Position,
    Probabilities,
    Signal,
    SignalAction,
)
from tests.unit.serve.serve_builders import VERSIONS, tiny_registry

SYMBOLS = ("BTCUSDT", "ETHUSDT")
FEE_BPS = 10.0


def simulate(days: int = 1) -> SimulationResult:
    return SimulatedMarket(SimConfig.for_symbols(list(SYMBOLS), days=days, news_per_day=24)).run()


class Replay:
    """Bars -> feed, tape, signal (oracle), risk decision, next-open fills, marks."""

    def __init__(
        self,
        view: MemoryLiveView,
        tape: MarketTape,
        clock: ReplayClock,
        sim: SimulationResult,
        version: str,
    ) -> None:
        self.view, self.tape, self.clock, self.version = view, tape, clock, version
        self.bars = {s: sim.bars[s].reset_index(drop=True) for s in SYMBOLS}
        self.oracle = {s: sim.oracle[s].reset_index(drop=True) for s in SYMBOLS}
        self.atr = {
            s: (b["high"] - b["low"]).rolling(14).mean().to_numpy() for s, b in self.bars.items()
        }
        self.news = sorted(sim.news, key=lambda n: n.published_at)
        self.i = 0
        self.switch: FeedSwitch | None = None
        self.cash = view.initial_equity
        self.day_open = view.initial_equity
        self.day = None
        self.positions: dict[str, Position] = {}
        self.entry: dict[str, tuple[pd.Timestamp, float, float]] = {}  # ts, price, fees
        self.pending: list[Order] = []
        self.orders_placed: list[Order] = []
        self._news_at = 0
        for s in SYMBOLS:
            view.add_feed("replay-crypto", AssetClass.CRYPTO, [s])

    @property
    def n_bars(self) -> int:
        return min(len(b) for b in self.bars.values())

    def run(self, n: int) -> None:
        for _ in range(n):
            self.step()

    def step(self) -> None:
        i = self.i
        if i >= self.n_bars:
            raise IndexError(f"replay: bar {i} is past the end ({self.n_bars})")
        ts = self.bars[SYMBOLS[0]]["ts"].iloc[i].to_pydatetime()
        close_ts = ts + BAR_INTERVAL
        if self.day != ts.date():
            self.day, self.day_open = ts.date(), self._equity(i, at_open=True)
        self.clock.advance_to(close_ts)
        if self.switch is not None and not self.switch.running(AssetClass.CRYPTO):
            self.i += 1  # the feed is stopped: time passes, no bar reaches the loop
            return
        prices = {s: float(self.bars[s]["close"].iloc[i]) for s in SYMBOLS}
        for s in SYMBOLS:
            row = self.bars[s].iloc[i]
            self._fill_pending(s, float(row["open"]), ts)
            self.view.feed_bar("replay-crypto", AssetClass.CRYPTO, s, ts)
            self.tape.record_bar(
                Bar(
                    s,
                    ts,
                    float(row["open"]),
                    float(row["high"]),
                    float(row["low"]),
                    float(row["close"]),
                    float(row["volume"]),
                )
            )
        self._headlines(close_ts)
        for s in SYMBOLS:
            self._decide(s, i, ts, close_ts, prices)
        self.view.mark(ts, self._equity(i), self.day_open, self.positions, prices)
        self.i += 1

    def _decide(self, s: str, i: int, ts, close_ts, prices: dict[str, float]) -> None:
        o = self.oracle[s].iloc[i]
        probs = Probabilities(float(o["p_up"]), float(o["p_down"]), float(o["p_flat"]))
        k = int(np.argmax([probs.up, probs.down, probs.flat]))
        action = (SignalAction.BUY, SignalAction.SELL, SignalAction.HOLD)[k]
        signal = Signal(s, ts, action, [probs.up, probs.down, probs.flat][k], probs, self.version)
        portfolio = PortfolioSnapshot(
            self._equity(i), self.day_open, dict(self.positions), tuple(self.pending), prices
        )
        atr = float(self.atr[s][i])
        market = MarketSnapshot(
            s,
            close_ts,
            prices[s],
            atr if math.isfinite(atr) else math.nan,
            AssetClass.CRYPTO,
            prices[s],
        )
        with self.view._lock:  # the engine is shared with the API's commands
            decision = self.view.engine.decide(signal, portfolio, market)
        for order in decision.orders:
            self.view.record_order(order, OrderStatus.SUBMITTED, close_ts)
            self.pending.append(order)
            self.orders_placed.append(order)
        if decision.symbol != s:  # FLATTEN_ALL is decided for "*": shown on this ticker
            decision = replace(decision, symbol=s)
        self.view.publish_signal(signal, decision)

    def _fill_pending(self, s: str, price: float, ts) -> None:
        keep = []
        for order in self.pending:
            if order.symbol != s:
                keep.append(order)
                continue
            fee = abs(order.qty * price) * FEE_BPS / 1e4
            signed = order.side.sign * order.qty
            self.cash -= signed * price + fee
            held = self.positions.get(s)
            qty = (held.qty if held else 0.0) + signed
            if held is None:
                self.positions[s] = Position(
                    s, signed, price, ts, order.stop_loss, order.take_profit
                )
                self.entry[s] = (ts, price, fee)
            elif abs(qty) < 1e-12:
                entry_ts, entry_price, entry_fee = self.entry.pop(s)
                pnl = (price - entry_price) * held.qty - entry_fee - fee
                self.view.record_trade(
                    ClosedTrade(
                        s,
                        order.side,
                        abs(held.qty),
                        entry_ts,
                        ts,
                        entry_price,
                        price,
                        pnl,
                        entry_fee + fee,
                        "signal",
                    )
                )
                del self.positions[s]
            else:
                self.positions[s] = replace(held, qty=qty)
            fill = Fill(
                order.client_order_id,
                s,
                order.side,
                order.qty,
                price,
                fee,
                ts,
                "exit" if order.reduce_only else "entry",
                fill_id=f"f-{order.client_order_id}",
            )
            self.view.record_order(order, OrderStatus.FILLED, ts, order.qty, price)
            self.view.record_fill(fill)
        self.pending = keep

    def _headlines(self, until) -> None:
        while self._news_at < len(self.news) and self.news[self._news_at].published_at < until:
            item = self.news[self._news_at]
            # the simulator knows each headline's sentiment; it stands in for the text model's
            self.tape.record_headline(ScoredHeadline(item, item.true_sentiment, (item.topic,)))
            self._news_at += 1

    def _equity(self, i: int, at_open: bool = False) -> float:
        col = "open" if at_open else "close"
        return self.cash + sum(
            p.qty * float(self.bars[s][col].iloc[i]) for s, p in self.positions.items()
        )


class PanelApi:
    """Settings with fresh keys, a registry, the view, the replay and the server."""

    def __init__(self, tmp: Path, sim: SimulationResult, bars: int) -> None:
        self.operate_key = secrets.token_urlsafe(24)
        self.read_key = secrets.token_urlsafe(24)
        self.settings: Settings = load_settings(
            registry_dir=tmp / "registry",
            universe=[{"symbol": s, "asset_class": "crypto"} for s in SYMBOLS],
            api={"keys": [self.operate_key], "read_keys": [self.read_key]},
            risk={"confidence_gate": 0.40},
        )
        tiny_registry(self.settings.registry_dir)
        start = sim.bars[SYMBOLS[0]]["ts"].iloc[0].to_pydatetime()
        self.clock = ReplayClock(start)
        self.view = MemoryLiveView.from_settings(
            self.settings, self.clock, RiskEngine(self.settings.risk), initial_equity=100_000.0
        )
        self.tape = MarketTape()
        self.replay = Replay(self.view, self.tape, self.clock, sim, VERSIONS[0])
        self.replay.run(bars)
        self.jobs = JobBoard(LocalJobRunner(tmp / "jobs"), {"tiny": tiny_job(tmp / "jobs")})
        parts = build_worker_api(
            self.view,
            self.settings,
            tickers=self.view.tickers(),
            classes=[AssetClass.CRYPTO],
            clock=self.clock,
            info=RunInfo("paper", "paper", start),
            jobs=self.jobs,
            tape=self.tape,
        )
        self.replay.switch = parts.switch
        self.server = uvicorn.Server(
            uvicorn.Config(parts.app, host="127.0.0.1", port=0, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def start(self) -> PanelApi:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        [sock] = self.server.servers[0].sockets
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1"
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.jobs.close()


TINY_JOB = """
import json, pathlib, sys
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True)
print("fold 0: dacc 0.51", file=sys.stderr, flush=True)
(out / "report.md").write_text("# report\\n")
print(json.dumps({"version": "lstm-tiny", "folds": 1}))
"""


def tiny_job(root: Path):  # noqa: ANN201 - a kind for JobBoard
    """A job as fast as a subprocess gets: logs a line, writes a report, prints its JSON."""

    def spec(job_id: str) -> JobSpec:
        out = root / job_id
        return JobSpec("tiny", (sys.executable, "-c", TINY_JOB, str(out)), out / "report.md")

    return spec


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def later(ts, minutes: int) -> object:
    return ts + timedelta(minutes=minutes)
