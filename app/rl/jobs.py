"""The two jobs behind ``rl-train`` and ``rl-eval``: read the inputs, train or evaluate, report.

Inputs are the backtest's: a folder of ``<TICKER>_5m.csv`` files (or one file) read by the
sources' validator, and a signals CSV checked by the backtest's parser. One ticker per run.
The training part ends at ``train_end`` (default: the UTC midnight closest to 70% of the
signal span); evaluation starts there or later, never on bars the agent trained on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from app.config import Settings
from app.errors import InputError
from app.rl.agent import (
    DqnConfig,
    dqn_meta,
    env_config_from_meta,
    env_meta,
    greedy_policy,
    load_agent,
    save_agent,
    train_dqn,
)
from app.rl.env import EnvConfig, ExecutionEnv
from app.rl.evaluate import compare
from app.rl.series import MarketSeries, build_series, read_signals_table
from app.sources.backtest_files import load_price_files, price_files_in
from app.types import AssetClass

TRAIN_SHARE = 0.7


@dataclass(frozen=True, slots=True)
class Inputs:
    """Where the bars and signals come from and which ticker to trade."""

    signals: Path
    prices: Path
    asset_class: str | None = None
    ticker: str | None = None


def load_series(inputs: Inputs, settings: Settings) -> MarketSeries:
    """The ticker's bars with its signals aligned (``Inputs.ticker`` or the first ticker, in
    sorted order, that has both prices and signals)."""
    if inputs.prices.is_dir():
        bars, _ = load_price_files(price_files_in(inputs.prices))
    else:
        bars, _ = load_price_files([inputs.prices])
    raw = read_signals_table(inputs.signals)
    tickers = sorted(set(raw["ticker"].astype(str).str.strip()) & set(bars))
    if inputs.ticker is not None:
        if inputs.ticker not in tickers:
            raise InputError(
                f"--ticker={inputs.ticker!r}: not among tickers with prices and signals {tickers}"
            )
        symbol = inputs.ticker
    elif tickers:
        symbol = tickers[0]
    else:
        raise InputError(f"signals file {inputs.signals}: no ticker with prices in {inputs.prices}")
    series, _ = build_series(raw, bars, symbol, _asset_class(inputs, symbol, settings))
    return series


def train_job(
    series: MarketSeries,
    env_config: EnvConfig,
    dqn: DqnConfig,
    out: Path,
    train_end: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Train on the signal-covered bars before ``train_end``; save the agent in ``out``."""
    first, last = series.signal_span()
    end = train_end if train_end is not None else default_train_end(first, last)
    train = series.between(first, end)
    env = ExecutionEnv(train, env_config)
    t0 = time.perf_counter()
    model = train_dqn(env, dqn)
    seconds = time.perf_counter() - t0
    meta = {
        "ticker": series.symbol,
        "asset_class": series.asset_class.value,
        "train_start": first.isoformat(),
        "train_end": end.isoformat(),
        "train_bars": len(train),
        "env": env_meta(env_config),
        "dqn": dqn_meta(dqn),
        "device": str(model.device),
    }
    save_agent(model, out, meta)
    return {
        "command": "rl-train",
        "out": str(out),
        "ticker": series.symbol,
        "train_start": meta["train_start"],
        "train_end": meta["train_end"],
        "train_bars": len(train),
        "steps": dqn.steps,
        "device": meta["device"],
        "seconds": round(seconds, 2),
    }


def eval_job(
    agent_dir: Path,
    series: MarketSeries,
    start: pd.Timestamp | None = None,
    seed: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """The agent, a seeded random policy and the risk-layer backtest on the held-out bars."""
    model, meta = load_agent(agent_dir, device)
    if meta.get("ticker") != series.symbol:
        raise InputError(
            f"--agent {agent_dir}: trained on ticker={meta.get('ticker')!r}, not {series.symbol!r}"
        )
    train_end = pd.Timestamp(meta["train_end"])
    begin = start if start is not None else train_end
    if begin < train_end:
        raise InputError(
            f"--start={begin.isoformat()}: before the end of the training part "
            f"({train_end.isoformat()}); evaluate on held-out bars only"
        )
    held_out = series.between(begin, None)
    out = compare(held_out, env_config_from_meta(meta), greedy_policy(model), seed)
    out.update(
        {
            "ticker": series.symbol,
            "start": held_out.ts.iloc[0].isoformat(),
            "end": held_out.ts.iloc[-1].isoformat(),
            "bars": len(held_out),
            "seed": seed,
        }
    )
    return out


def default_train_end(first: pd.Timestamp, last: pd.Timestamp) -> pd.Timestamp:
    """The UTC midnight closest to ``TRAIN_SHARE`` of the way from ``first`` to ``last``."""
    end = (first + (last - first) * TRAIN_SHARE).round("1D")
    if not first < end <= last:
        raise InputError(
            f"signals span {first.isoformat()}..{last.isoformat()}: too short to split into "
            "training and held-out days; pass --train-end"
        )
    return end


def parse_ts(text: str, flag: str) -> pd.Timestamp:
    """An aware UTC timestamp from a flag: a UTC day (``2025-01-20``) or a time with an offset
    (``2025-01-20T12:00Z``); a time of day without an offset is refused (naive)."""
    try:
        ts = pd.Timestamp(text)
    except ValueError as exc:
        raise InputError(f"{flag}={text!r}: not a timestamp ({exc})") from exc
    if ts.tzinfo is not None:
        return ts.tz_convert("UTC")
    if ts != ts.normalize() or ":" in text:
        raise InputError(f"{flag}={text!r}: a time needs a UTC offset (e.g. ...Z)")
    return ts.tz_localize("UTC")


def _asset_class(inputs: Inputs, symbol: str, settings: Settings) -> AssetClass:
    """--asset-class, else the ``symbols`` of a simulation folder's manifest.json, else the
    configured universe."""
    text = inputs.asset_class
    if text is None and inputs.prices.is_dir() and (inputs.prices / "manifest.json").is_file():
        path = inputs.prices / "manifest.json"
        try:
            text = json.loads(path.read_text(encoding="utf-8"))["symbols"].get(symbol)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}: field 'symbols' is unreadable ({exc})") from exc
    if text is None:
        for asset in settings.universe:
            if asset.symbol == symbol:
                return asset.asset_class
        raise InputError(f"ticker={symbol!r}: asset class unknown; pass --asset-class")
    try:
        return AssetClass(str(text).lower())
    except ValueError:
        raise InputError(f"--asset-class {text!r}: expected crypto, stocks or forex") from None
