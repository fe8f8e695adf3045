"""ExecutionEnv: the gymnasium contract, seeding, and that every order goes through the risk
engine and the backtest's fills (gate, drawdown halt, stops, exits, reward arithmetic)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from app.backtest.engine import run_backtest
from app.config import RiskSettings
from app.rl.env import OBS_NAMES, EnvConfig, ExecutionEnv
from app.rl.evaluate import random_policy, run_policy
from tests.builders import bars_frame
from tests.rl_builders import flat_bars, series_with, set_bar

HOLD, LONG_HALF, LONG, SHORT_HALF, SHORT, EXIT = range(6)
STRONG_UP = (0.9, 0.05, 0.05)


def _env(series, **kw) -> ExecutionEnv:
    return ExecutionEnv(series, EnvConfig(**kw))


def _random_series(n: int = 600, seed: int = 0):
    """Random-walk bars; every bar a signal, about a fifth of them above the 0.70 gate."""
    bars = bars_frame(n, seed=seed)[["ts", "open", "high", "low", "close"]]
    rng = np.random.default_rng(seed)
    top = np.where(rng.random(n) < 0.2, rng.uniform(0.7, 0.95, n), rng.uniform(0.34, 0.69, n))
    rest = (1.0 - top)[:, None] * rng.dirichlet([1.0, 1.0], n)
    probs = {}
    for j in range(n):
        k = rng.integers(3)
        p = np.insert(rest[j], k, top[j])
        probs[j] = tuple(float(x) for x in p)
    return series_with(bars, probs)


def test_check_env_passes_without_warnings():
    env = _env(_random_series(200), episode_bars=50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert [str(w.message) for w in caught] == []
    assert env.observation_space.shape == (len(OBS_NAMES),)
    assert env.action_space.n == 6


def test_episodes_are_seeded_and_reproducible():
    series = _random_series(400)

    def episode(seed: int):
        env = _env(series, episode_bars=120)
        obs, info = env.reset(seed=seed)
        policy = random_policy(env.action_space.n, seed=1)
        trace, rewards = [obs], []
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(policy(obs))
            trace.append(obs)
            rewards.append(r)
            done = term or trunc
        return info["bar"], np.array(trace), np.array(rewards), env.result().fills

    a, b, c = episode(5), episode(5), episode(6)
    assert a[0] == b[0] and a[0] != c[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    assert a[3].equals(b[3]) and len(a[3]) > 0  # the random policy did trade


def test_following_the_model_reproduces_the_backtest_exactly():
    """The env drives the backtest's own loop: taking every signal gives run_backtest's run."""
    series = _random_series(600, seed=3)
    config = EnvConfig()

    def follow(obs: np.ndarray) -> int:
        if obs[3] == 0.0:
            return HOLD
        return (LONG, SHORT, HOLD)[int(np.argmax(obs[:3]))]

    mine, _ = run_policy(series, config, follow)
    theirs = run_backtest(
        {series.symbol: series.bars},
        series.signals_frame(),
        {series.symbol: series.asset_class},
        config.backtest_config(series),
    )
    assert len(theirs.fills) > 10
    np.testing.assert_array_equal(mine.equity["equity"], theirs.equity["equity"])
    cols = ["ts", "client_order_id", "side", "qty", "price", "fee", "reason"]
    assert mine.fills[cols].equals(theirs.fills[cols])
    assert mine.metrics()["total_return"] == theirs.metrics()["total_return"]


def test_entry_below_the_gate_is_refused_by_the_risk_engine():
    series = series_with(flat_bars(30), {20: (0.6, 0.3, 0.1), 21: STRONG_UP})
    env = _env(series)
    env.reset(options={"start": 20})
    _, _, _, _, info = env.step(LONG)
    assert info["decision"] == "HOLD"
    assert info["reasons"] == ("confidence_below_gate:0.60<0.70",)
    assert info["position"] == 0.0 and env.result().fills.empty
    # the model says UP with 0.9: the agent cannot short on it (P(DOWN) = 0.05 is the confidence)
    _, _, _, _, info = env.step(SHORT)
    assert info["reasons"] == ("confidence_below_gate:0.05<0.70",)
    # no model output on a bar: nothing to pass the gate
    _, _, _, _, info = env.step(LONG)
    assert info["reasons"] == ("no_signal",) and info["position"] == 0.0


def test_approved_entry_carries_stops_and_the_stop_fires():
    bars = flat_bars(30)  # ATR(14) = 0.2: long stop at 100 - 1.5 * 0.2 = 99.7
    set_bar(bars, 21, low=99.5)
    env = _env(series_with(bars, {20: STRONG_UP}))
    env.reset(options={"start": 20})
    _, _, _, _, info = env.step(LONG)
    assert info["decision"] == "OPEN_LONG" and "entry:long" in info["reasons"]
    assert info["position"] == 0.0  # filled at 21's open, stopped out inside bar 21
    fills = env.result().fills
    assert list(fills["reason"]) == ["entry", "stop_loss"]
    assert fills["price"].iloc[1] == pytest.approx(99.7 * (1 - 2e-4), rel=1e-12)
    trades = env.result().trades
    assert list(trades["exit_reason"]) == ["stop_loss"]
    assert trades["stop_loss"].iloc[0] == pytest.approx(99.7)


def test_drawdown_halt_flattens_and_stops_entries():
    risk = RiskSettings(
        max_daily_drawdown=0.005,
        stop_mode="pct",
        stop_loss_pct=0.05,
        take_profit_pct=0.1,
        risk_per_trade=0.05,
    )
    bars = flat_bars(30)
    set_bar(bars, 21, open=100.0, high=100.1, low=97.9, close=98.0)
    for j in range(22, 30):
        set_bar(bars, j, open=98.0, high=98.1, low=97.9, close=98.0)
    env = _env(series_with(bars, {20: STRONG_UP, 22: STRONG_UP, 23: STRONG_UP}), risk=risk)
    env.reset(options={"start": 20})
    _, _, _, _, info = env.step(LONG)
    assert info["position"] == pytest.approx(250.0)  # capped at 25% of equity
    _, _, _, _, info = env.step(HOLD)  # close of 21: -0.5x% of equity -> HALTED, flatten
    assert info["position"] == 0.0 and info["risk_state"] == "HALTED"
    assert list(env.result().fills["reason"]) == ["entry", "flatten"]
    _, _, _, _, info = env.step(LONG)
    assert info["decision"] == "HOLD" and info["reasons"] == ("halted:daily_drawdown",)
    obs, _, _, _, info = env.step(LONG_HALF)
    assert info["reasons"] == ("halted:daily_drawdown",) and info["position"] == 0.0
    assert obs[OBS_NAMES.index("halted")] == 1.0


def test_reward_is_the_equity_change_net_of_costs_minus_the_penalty():
    """Hand-checked: 250 units bought at 101 + 2 bps, 10 bps fee, marked at 102."""
    risk = RiskSettings(stop_mode="pct", stop_loss_pct=0.01, take_profit_pct=0.05)
    bars = flat_bars(30)
    set_bar(bars, 21, open=101.0, high=102.5, low=100.9, close=102.0)
    for j in range(22, 30):
        set_bar(bars, j, open=102.0, high=102.1, low=101.9, close=102.0)
    env = _env(series_with(bars, {20: STRONG_UP}), risk=risk, risk_penalty=2.0)
    env.reset(options={"start": 20})
    _, reward, _, _, info = env.step(LONG)
    qty = 250.0  # 0.005 * 1e5 * 0.75 / (100 * 0.01) = 375, capped at 0.25 * 1e5 / 100
    price = 101.0 * 1.0002
    fee = 0.001 * qty * price
    equity = 100_000.0 - qty * price - fee + qty * 102.0
    assert info["position"] == pytest.approx(qty)
    assert info["equity"] == pytest.approx(equity, rel=1e-12)
    expected = 1e4 * (equity - 100_000.0) / 100_000.0 - 2.0 * qty * 102.0 / equity
    assert reward == pytest.approx(expected, rel=1e-10)
    assert reward == pytest.approx(21.969495 - 2.0 * 25_500.0 / 100_219.69495, rel=1e-9)
    _, reward, _, _, _ = env.step(HOLD)  # flat price: only the penalty
    assert reward == pytest.approx(-2.0 * qty * 102.0 / equity, rel=1e-10)


def test_exit_and_size_fraction_go_through_the_engine():
    bars = flat_bars(40)
    env = _env(series_with(bars, {20: STRONG_UP, 24: STRONG_UP}))
    env.reset(options={"start": 20})
    _, _, _, _, info = env.step(LONG)
    full = info["position"]
    _, _, _, _, info = env.step(EXIT)
    assert info["decision"] == "CLOSE" and info["reasons"] == ("order_checked",)
    _, _, _, _, info = env.step(EXIT)
    assert info["position"] == 0.0 and info["reasons"] == ("exit:no_position",)
    assert list(env.result().fills["reason"]) == ["entry", "agent_exit"]
    assert full == pytest.approx(0.25 * 100_000.0 / 100.0)  # the notional cap binds
    _, _, _, _, info = env.step(HOLD)
    equity = info["equity"]  # a little less after the round trip's costs
    _, _, _, _, info = env.step(LONG_HALF)
    assert info["position"] == pytest.approx(0.5 * 0.25 * equity / 100.0, rel=1e-12)
    assert "agent_size:0.5" in info["reasons"]


def test_bad_action_and_config_are_refused():
    env = _env(series_with(flat_bars(30), {}))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action=6"):
        env.step(6)
    with pytest.raises(ValueError, match="sizes"):
        EnvConfig(sizes=(0.0,))
    with pytest.raises(ValueError, match="risk_penalty"):
        EnvConfig(risk_penalty=-1.0)
