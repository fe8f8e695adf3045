"""``ExecutionEnv``: when to enter, how much and when to leave, on the model's signal.

A gymnasium environment over one ticker's replayed bars and the model's out-of-sample signals.
Every step is one bar close; every order goes through the backtest's loop and the live risk
engine (``app.rl.replay``), so the agent can only choose among what the risk layer allows:

- actions (``Discrete(2 * len(sizes) + 2)``): 0 hold; then enter long at each size; then enter
  short at each size; last: exit. An entry is a BUY/SELL signal with the model's probability of
  that side, so the confidence gate, the drawdown halt, the caps and the ATR stops apply; the
  size is a fraction of the size the engine approved. Entering against a position closes it
  (the engine never reverses in one decision). Exit is a reduce-only order.
- observation (``Box(18,)``, float32, clipped to [-10, 10]): P(UP), P(DOWN), P(FLAT), has a
  signal, ATR/price in %, 1-bar and 12-bar log returns in ATR units, position side, position
  notional / the per-position cap, unrealized P&L in % of equity, time of day (sin, cos),
  HALTED, REDUCING, today's drawdown / the daily limit, an order pending, and P(UP) and
  P(DOWN) minus the confidence gate (x10; -10 without a signal).
- reward: ``reward_scale * (equity[t+1] - equity[t]) / initial_equity - risk_penalty *
  exposure[t+1]``: the mark-to-market change of the account, so after fees and slippage
  (booked on every fill), minus a penalty per bar on the gross exposure (notional / equity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from app.backtest.engine import BacktestConfig, BacktestResult
from app.config import CostSettings, RiskSettings
from app.rl.replay import Replay
from app.rl.series import MarketSeries
from app.types import RiskDecision, RiskState

OBS_NAMES: tuple[str, ...] = (
    "p_up",
    "p_down",
    "p_flat",
    "has_signal",
    "atr_pct",
    "ret_1_atr",
    "ret_12_atr",
    "position_side",
    "position_size",
    "unrealized_pnl_pct",
    "tod_sin",
    "tod_cos",
    "halted",
    "reducing",
    "day_drawdown",
    "order_pending",
    "gate_margin_up",
    "gate_margin_down",
)
OBS_LIMIT = 10.0


@dataclass(frozen=True)
class EnvConfig:
    """Knobs of the environment. ``episode_bars=None`` runs from the start to the series end."""

    initial_equity: float = 100_000.0
    sizes: tuple[float, ...] = (0.5, 1.0)
    episode_bars: int | None = 288
    reward_scale: float = 1e4  # reward in basis points of the initial equity
    risk_penalty: float = 0.1  # reward units per bar at exposure 1.0 (notional = equity)
    risk: RiskSettings = field(default_factory=RiskSettings)
    costs: CostSettings = field(default_factory=CostSettings)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial_equity) and self.initial_equity > 0):
            raise ValueError(f"EnvConfig.initial_equity={self.initial_equity!r}: must be > 0")
        if not self.sizes or any(not (0.0 < s <= 1.0) for s in self.sizes):
            raise ValueError(f"EnvConfig.sizes={self.sizes!r}: each must be in (0, 1]")
        if self.episode_bars is not None and self.episode_bars < 1:
            raise ValueError(f"EnvConfig.episode_bars={self.episode_bars!r}: must be >= 1")
        if not (math.isfinite(self.reward_scale) and self.reward_scale > 0):
            raise ValueError(f"EnvConfig.reward_scale={self.reward_scale!r}: must be > 0")
        if not (math.isfinite(self.risk_penalty) and self.risk_penalty >= 0):
            raise ValueError(f"EnvConfig.risk_penalty={self.risk_penalty!r}: must be >= 0")

    def action_names(self) -> tuple[str, ...]:
        longs = tuple(f"long_{s:g}" for s in self.sizes)
        shorts = tuple(f"short_{s:g}" for s in self.sizes)
        return ("hold", *longs, *shorts, "exit")

    def backtest_config(self, series: MarketSeries) -> BacktestConfig:
        return BacktestConfig(
            initial_equity=self.initial_equity,
            risk=self.risk,
            costs=self.costs,
            calendar=series.asset_class,
        )


class ExecutionEnv(gym.Env):
    """One account trading one ticker on the model's signal, through the risk engine."""

    metadata = {"render_modes": []}

    def __init__(self, series: MarketSeries, config: EnvConfig | None = None) -> None:
        super().__init__()
        self.series = series
        self.config = config or EnvConfig()
        self.names = self.config.action_names()
        self.action_space = gym.spaces.Discrete(len(self.names))
        self.observation_space = gym.spaces.Box(
            -OBS_LIMIT, OBS_LIMIT, shape=(len(OBS_NAMES),), dtype=np.float32
        )
        self._bt = self.config.backtest_config(series)
        self._template, self._ts_ns = Replay.prepare(
            series.bars, series.symbol, series.asset_class, self._bt
        )
        self._features = _market_features(series, np.asarray(self._template.atr))
        # how far P(UP) / P(DOWN) is above the confidence gate, in units of 0.1 (0 = at it):
        # an entry that way passes the gate when >= 0 (the risk engine decides the rest)
        gate = self.config.risk.confidence_gate
        self._margins = np.where(
            series.has_signal[:, None], (self._features[:, :2] - gate) * 10.0, -10.0
        )
        self._n = len(series)
        self._close = self._template.close
        self._has_signal = series.has_signal
        self.replay: Replay | None = None
        self._j = 0
        self._end = 0
        self._equity = self.config.initial_equity

    # ------------------------------------------------------------------ gymnasium API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """A fresh account; the episode starts at ``options["start"]`` (a bar index) or at a
        bar drawn from the seeded generator so that a whole episode fits."""
        super().reset(seed=seed)
        last_start = self._n - 2
        length = self.config.episode_bars
        if length is not None:
            last_start = max(0, self._n - 1 - length)
        if options and "start" in options:
            start = int(options["start"])
            if not 0 <= start <= self._n - 2:
                raise ValueError(f"options.start={start}: must be in [0, {self._n - 2}]")
        else:
            start = int(self.np_random.integers(0, last_start + 1))
        self._end = self._n - 1 if length is None else min(self._n - 1, start + length)
        self.replay = Replay(self._template, self._ts_ns, self._bt)
        self._j = start
        self.replay.open_bar(start)
        self._equity = self.replay.equity
        return self._obs(), self._info("reset", None, ())

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.replay is None:
            raise RuntimeError("ExecutionEnv.step before reset")
        a = int(action)
        if not self.action_space.contains(a):
            raise ValueError(f"action={action!r}: must be in [0, {self.action_space.n})")
        replay, j = self.replay, self._j
        decision, reasons = self._act(a, j)
        j += 1
        replay.open_bar(j)
        equity = replay.equity
        exposure = abs(replay.position) * self._close[j] / equity
        cfg = self.config
        reward = cfg.reward_scale * (equity - self._equity) / cfg.initial_equity
        reward -= cfg.risk_penalty * exposure
        self._equity = equity
        self._j = j
        truncated = j >= self._end
        if truncated:  # the last bar's close, so the equity curve ends at the episode end
            replay.close_bar(j)
        return (
            self._obs(),
            float(reward),
            False,
            truncated,
            self._info(self.names[a], decision, reasons),
        )

    # ------------------------------------------------------------------ one decision

    def _act(self, a: int, j: int) -> tuple[RiskDecision | None, tuple[str, ...]]:
        """Bar j's close with the agent's request; returns the risk decision and its reasons."""
        replay, k = self.replay, len(self.config.sizes)
        assert replay is not None
        if 1 <= a <= 2 * k:
            direction = 1 if a <= k else -1
            if not self._has_signal[j]:
                replay.close_bar(j)  # no model output on this bar: nothing to pass the gate
                return None, ("no_signal",)
            replay.engine.size_fraction = self.config.sizes[(a - 1) % k]
            p = float(self.series.probs[j, 0 if direction > 0 else 1])
            decision = replay.close_bar(j, direction, p)
            return decision, decision.reasons if decision else ()
        replay.close_bar(j)
        if a == 2 * k + 1:
            decision = replay.exit(j)
            if decision is None:
                reason = "exit:pending_close" if replay.position else "exit:no_position"
                return None, (reason,)
            return decision, decision.reasons
        return None, ()

    # ------------------------------------------------------------------ observation

    def _obs(self) -> np.ndarray:
        replay, j = self.replay, self._j
        assert replay is not None
        close = self._close[j]
        equity = replay.equity
        qty = replay.position
        risk = self.config.risk
        size = abs(qty) * close / equity / risk.max_position_notional
        unreal = qty * (close - replay.avg_price) / equity * 100.0 if qty else 0.0
        day_dd = (equity / replay.day_open_equity - 1.0) / risk.max_daily_drawdown
        state = replay.state
        f = self._features[j]
        obs = np.empty(len(OBS_NAMES))
        obs[:7] = f[:7]
        obs[7:10] = (float(np.sign(qty)), size, unreal)
        obs[10:12] = f[7:9]
        obs[12:16] = (
            float(state is RiskState.HALTED),
            float(state is RiskState.REDUCING),
            day_dd,
            float(replay.pending),
        )
        obs[16:] = self._margins[j]
        return np.clip(obs, -OBS_LIMIT, OBS_LIMIT).astype(np.float32)

    def _info(
        self, action: str, decision: RiskDecision | None, reasons: tuple[str, ...]
    ) -> dict[str, Any]:
        replay = self.replay
        assert replay is not None
        return {
            "bar": self._j,
            "ts": replay.close_time(self._j).isoformat(),
            "action": action,
            "decision": decision.action.value if decision is not None else "",
            "reasons": tuple(reasons),
            "equity": replay.equity,
            "position": replay.position,
            "risk_state": replay.state.value,
        }

    def result(self) -> BacktestResult:
        """The episode so far as the backtest reports it (equity curve, trades, fills)."""
        if self.replay is None:
            raise RuntimeError("ExecutionEnv.result before reset")
        return self.replay.result()


def _market_features(series: MarketSeries, atr: np.ndarray) -> np.ndarray:
    """Per bar, causal: p_up, p_down, p_flat (0 without a signal), has_signal, ATR/close in %,
    1- and 12-bar log returns in ATR units (0 where undefined), time-of-day sin and cos of the
    bar's close."""
    close = series.bars["close"].to_numpy(np.float64)
    n = len(close)
    out = np.zeros((n, 9))
    out[:, :3] = np.nan_to_num(series.probs, nan=0.0)
    out[:, 3] = series.has_signal.astype(np.float64)
    rel = atr / close
    out[:, 4] = np.nan_to_num(rel * 100.0, nan=0.0)
    logc = np.log(close)
    with np.errstate(invalid="ignore", divide="ignore"):
        for col, lag in ((5, 1), (6, 12)):
            ret = np.full(n, np.nan)
            ret[lag:] = logc[lag:] - logc[:-lag]
            out[:, col] = np.nan_to_num(ret / rel / math.sqrt(lag), nan=0.0, posinf=0.0, neginf=0.0)
    ts = series.bars["ts"]
    minutes = (ts.dt.hour * 60 + ts.dt.minute + 5).to_numpy(np.float64) % 1440
    angle = 2.0 * math.pi * minutes / 1440.0
    out[:, 7], out[:, 8] = np.sin(angle), np.cos(angle)
    return out
