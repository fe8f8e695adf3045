"""Run a policy over held-out bars and compare it with two baselines on the same bars.

- ``agent``: the trained policy through ``ExecutionEnv`` (one episode, start to end);
- ``random``: a seeded uniform random action each bar, through the same environment;
- ``risk_layer``: every signal the risk layer approves, i.e. ``run_backtest`` on the same bars
  and signals (the model's signals traded as they come).

All three are scored by the backtest's metric functions (``app.backtest.metrics`` through
``BacktestResult.metrics``) on the equity curve at every bar close.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np

from app.backtest.engine import BacktestResult, run_backtest
from app.rl.agent import Policy
from app.rl.env import EnvConfig, ExecutionEnv
from app.rl.series import MarketSeries

HEADLINE: tuple[str, ...] = ("total_return", "sharpe", "n_trades")


def random_policy(n_actions: int, seed: int) -> Policy:
    """Uniform random actions from a seeded generator (the same seed, the same actions)."""
    rng = np.random.default_rng(seed)
    return lambda obs: int(rng.integers(n_actions))


def run_policy(
    series: MarketSeries, config: EnvConfig, policy: Policy
) -> tuple[BacktestResult, Counter]:
    """One episode over the whole series; returns the run and the actions taken, by name."""
    env = ExecutionEnv(series, replace(config, episode_bars=None))
    obs, _ = env.reset(seed=0, options={"start": 0})
    actions: Counter = Counter()
    done = False
    while not done:
        a = policy(obs)
        actions[env.names[a]] += 1
        obs, _, terminated, truncated, _ = env.step(a)
        done = terminated or truncated
    return env.result(), actions


def risk_layer_run(series: MarketSeries, config: EnvConfig) -> BacktestResult:
    """The backtest of the model's own signals on these bars (the 'risk layer' baseline)."""
    return run_backtest(
        {series.symbol: series.bars},
        series.signals_frame(),
        {series.symbol: series.asset_class},
        config.backtest_config(series),
    )


def headline(result: BacktestResult) -> dict[str, Any]:
    metrics = result.metrics()
    return {k: metrics[k] for k in HEADLINE}


def compare(
    series: MarketSeries, config: EnvConfig, agent: Policy, seed: int = 0
) -> dict[str, Any]:
    """``{"agent": {...}, "random": {...}, "risk_layer": {...}}`` on the same held-out bars,
    plus the agent's action counts."""
    names = config.action_names()
    agent_run, agent_actions = run_policy(series, config, agent)
    random_run, _ = run_policy(series, config, random_policy(len(names), seed))
    return {
        "agent": headline(agent_run),
        "random": headline(random_run),
        "risk_layer": headline(risk_layer_run(series, config)),
        "agent_actions": {n: agent_actions[n] for n in names if agent_actions[n]},
    }
