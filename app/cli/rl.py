"""``python -m app rl-train`` and ``rl-eval``: a DQN execution agent on the model's signal.

    python -m app rl-train --signals signals.csv --prices runs/sim --steps 20000 --out runs/rl
    python -m app rl-eval --agent runs/rl --signals signals.csv --prices runs/sim

rl-eval prints last ``{"agent": {total_return, sharpe, n_trades}, "random": {...},
"risk_layer": {...}, ...}`` on the held-out bars (docs/RL.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app.config import load_settings
from app.errors import InputError
from app.rl.agent import DqnConfig
from app.rl.env import EnvConfig
from app.rl.jobs import Inputs, eval_job, load_series, parse_ts, train_job


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "rl-train",
        help="train a DQN execution agent on the model's signals (through the risk engine)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _inputs(train)
    train.add_argument("--steps", type=int, required=True, help="environment steps to train")
    train.add_argument("--out", type=Path, required=True, help="agent folder (created)")
    train.add_argument("--train-end", help="end of the training part (default: 70%% of the span)")
    train.add_argument("--episode-bars", type=int, default=288, help="bars per episode (288)")
    train.add_argument("--risk-penalty", type=float, default=EnvConfig.risk_penalty)
    train.add_argument("--sizes", type=float, nargs="+", default=list(EnvConfig.sizes))
    train.add_argument("--initial-equity", type=float, default=EnvConfig.initial_equity)
    train.set_defaults(func=run_train)

    ev = subparsers.add_parser(
        "rl-eval",
        help="the agent vs a random policy vs the risk-layer backtest on held-out bars",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("--agent", type=Path, required=True, help="folder written by rl-train")
    _inputs(ev)
    ev.add_argument("--start", help="first held-out bar (default: the training part's end)")
    ev.set_defaults(func=run_eval)


def _inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--signals", type=Path, required=True, help="signals CSV (walk-forward)")
    p.add_argument("--prices", type=Path, required=True, help="<TICKER>_5m.csv file or folder")
    p.add_argument("--asset-class", help="crypto|stocks|forex (default: manifest / universe)")
    p.add_argument("--ticker", help="ticker to trade (default: the first with signals)")
    p.add_argument("--config", type=Path, help="settings TOML (risk limits, costs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="torch device: auto (CUDA if present), cpu")


def _load(args: argparse.Namespace):
    settings = load_settings(args.config) if args.config else load_settings()
    inputs = Inputs(args.signals, args.prices, args.asset_class, args.ticker)
    return settings, load_series(inputs, settings)


def run_train(args: argparse.Namespace) -> dict[str, object]:
    settings, series = _load(args)
    if args.steps < 1:
        raise InputError(f"--steps={args.steps}: must be >= 1")
    try:
        env_config = EnvConfig(
            initial_equity=args.initial_equity,
            sizes=tuple(args.sizes),
            episode_bars=args.episode_bars,
            risk_penalty=args.risk_penalty,
            risk=settings.risk,
            costs=settings.costs,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    dqn = DqnConfig(steps=args.steps, seed=args.seed, device=args.device)
    end = parse_ts(args.train_end, "--train-end") if args.train_end else None
    return train_job(series, env_config, dqn, args.out, end)


def run_eval(args: argparse.Namespace) -> dict[str, object]:
    _, series = _load(args)
    start = parse_ts(args.start, "--start") if args.start else None
    return eval_job(args.agent, series, start, args.seed, args.device)
