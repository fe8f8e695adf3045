"""vectorbt as referee: our fills replayed through ``Portfolio.from_orders`` end at the same equity.

One vectorbt session for the module (its first use compiles for ~20 s; NUMBA_CACHE_DIR caches it).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from app.backtest.engine import BacktestConfig, run_backtest
from app.backtest.vectorbt_check import referee
from app.cli.main import main
from app.config import CostSettings, RiskSettings
from app.sim.config import SimConfig
from app.sim.market import SimulatedMarket
from app.types import AssetClass
from tests.builders import bars_frame

TOL = 1e-6


@pytest.fixture(scope="module")
def vbt():
    return pytest.importorskip("vectorbt")


def random_signals(bars: pd.DataFrame, ticker: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(bars)
    return pd.DataFrame(
        {
            "ts": bars["ts"],
            "ticker": ticker,
            "signal": rng.choice(["BUY", "SELL", "HOLD"], n, p=[0.3, 0.3, 0.4]),
            "confidence": rng.uniform(0.55, 1.0, n),
        }
    )


def check(result, bars) -> None:
    report = referee(result, bars)
    assert report.n_orders == len(result.fills)
    assert report.rel_error <= TOL, report.to_dict()
    assert report.max_rel_error_curve <= TOL, report.to_dict()


def test_single_ticker_with_intrabar_exits_matches_vectorbt(vbt):
    bars = {"BTCUSDT": bars_frame(4000, seed=11)}
    sig = random_signals(bars["BTCUSDT"], "BTCUSDT", 1)
    result = run_backtest(bars, sig, {"BTCUSDT": AssetClass.CRYPTO}, BacktestConfig())
    reasons = set(result.fills["reason"])
    assert {"entry", "stop_loss", "take_profit", "signal_close"} <= reasons  # all paths replayed
    check(result, bars)


def test_three_tickers_shared_cash_atr_slippage_and_halts_match_vectorbt(vbt):
    btc = bars_frame(3000, symbol="BTCUSDT", seed=21)
    eth = bars_frame(3000, symbol="ETHUSDT", seed=22).iloc[::2].reset_index(drop=True)
    aapl = bars_frame(1500, symbol="AAPL", seed=23)
    bars = {"BTCUSDT": btc, "ETHUSDT": eth, "AAPL": aapl}
    sig = pd.concat([random_signals(f, s, k) for k, (s, f) in enumerate(bars.items())])
    classes = {
        "BTCUSDT": AssetClass.CRYPTO,
        "ETHUSDT": AssetClass.CRYPTO,
        "AAPL": AssetClass.STOCKS,
    }
    # Tight drawdown limit so halts (FLATTEN_ALL fills) happen too.
    config = BacktestConfig(
        risk=RiskSettings(max_daily_drawdown=0.004),
        costs=CostSettings(slippage_mode="atr", slippage_atr=0.1),
    )
    result = run_backtest(bars, sig.sort_values("ts", kind="stable"), classes, config)
    assert "flatten" in set(result.fills["reason"])
    assert result.fills["ticker"].nunique() == 3
    assert result.fills["fee_rate"].nunique() == 2  # crypto and stocks fees differ
    check(result, bars)


def test_cli_end_to_end_on_csv_files_with_vectorbt_check(vbt, tmp_path, capsys):
    prices = tmp_path / "prices"
    prices.mkdir()
    for sym, seed in (("BTCUSDT", 31), ("ETHUSDT", 32)):
        frame = bars_frame(1200, symbol=sym, seed=seed)
        out = frame.drop(columns="symbol")
        out["ts"] = out["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.to_csv(prices / f"{sym}_5m.csv", index=False)
    sig = random_signals(bars_frame(1200, seed=31), "BTCUSDT", 5)
    sig["ts"] = sig["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    bad = pd.DataFrame(
        {
            "ts": ["2025-01-01T00:01:00Z", "garbage", "2025-01-01T00:10:00Z"],
            "ticker": ["BTCUSDT", "BTCUSDT", "NOPE"],
            "signal": ["BUY", "BUY", "BUY"],
            "confidence": ["0.9", "0.9", "0.9"],
        }
    )
    pd.concat([sig, bad]).to_csv(tmp_path / "signals.csv", index=False)
    out_dir = tmp_path / "run"
    argv = [
        "backtest",
        "--prices",
        str(prices),
        "--signals",
        str(tmp_path / "signals.csv"),
        "--out",
        str(out_dir),
        "--asset-class",
        "crypto",
        "--initial-equity",
        "50000",
        "--vectorbt-check",
    ]
    assert main(argv) == 0  # the real entry point of `python -m app`, in this process
    stdout = capsys.readouterr().out
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["signals"]["read"] == 1203
    assert summary["signals"]["rejected_by_reason"] == {
        "bad_timestamp": 1,
        "unknown_ticker": 1,
        "ts_not_on_bar": 1,
    }
    assert summary["vectorbt_check"]["ok"] is True
    assert summary["initial_equity"] == 50000.0
    trades = pd.read_csv(out_dir / "trades.csv")
    assert list(trades.columns) == [
        "entry_ts",
        "exit_ts",
        "ticker",
        "side",
        "qty",
        "entry_price",
        "exit_price",
        "stop_loss",
        "take_profit",
        "exit_reason",
        "pnl",
        "fees",
    ]
    assert len(trades) == summary["n_trades"] + (trades["exit_reason"] == "open_at_end").sum()
    equity = pd.read_csv(out_dir / "equity.csv")
    assert list(equity.columns) == ["ts", "equity", "drawdown", "risk_state"]
    assert equity["equity"].iloc[-1] == pytest.approx(summary["final_equity"])
    assert (out_dir / "equity.png").stat().st_size > 10_000
    assert json.loads((out_dir / "metrics.json").read_text())["sharpe"] == summary["sharpe"]


def test_cli_bad_flag_value_exits_2_with_one_line(tmp_path, capsys):
    argv = [
        "backtest",
        "--prices",
        f"BTCUSDT={tmp_path}/missing.csv",
        "--rule",
        "ema_cross",
        "--out",
        str(tmp_path / "o"),
        "--asset-class",
        "crypto",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "missing.csv" in err and "\n" not in err


def test_cli_reads_bars_from_a_duckdb_store_and_runs_the_ema_rule(tmp_path, capsys):
    from app.store import open_store

    url = f"duckdb:///{tmp_path}/store.db"
    store = open_store(url)
    try:
        store.write_bars(bars_frame(2000, symbol="BTCUSDT", seed=41))
    finally:
        store.close()
    out_dir = tmp_path / "run"
    argv = [
        "backtest",
        "--store",
        url,
        "--tickers",
        "BTCUSDT",
        "--rule",
        "ema_cross",
        "--out",
        str(out_dir),
    ]  # BTCUSDT's asset class comes from the configured universe
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["asset_class_calendar"] == "crypto"
    assert summary["bars"] == 2000
    assert summary["signals"]["accepted"] == 2000 - 47  # no signal before the slow EMA (48) is warm
    assert summary["signals_run"] == summary["signals"]["accepted"]
    decisions = summary["decisions"]  # one per signal, plus one per drawdown flatten
    assert sum(decisions.values()) == summary["signals_run"] + decisions.get("FLATTEN_ALL", 0)


def test_cli_takes_asset_classes_from_a_simulation_manifest(tmp_path, capsys):
    folder = tmp_path / "sim"
    folder.mkdir()
    for sym, seed in (("MSFT", 51), ("SOLUSDT", 52)):  # neither is in the default universe
        frame = bars_frame(300, symbol=sym, seed=seed).drop(columns="symbol")
        frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        frame.to_csv(folder / f"{sym}_5m.csv", index=False)
    # a simulator's manifest declares the classes (its own bars are replaced by the test's)
    SimulatedMarket(SimConfig.for_symbols(["MSFT", "SOLUSDT"], days=1)).run().manifest.save(folder)
    assert (
        main(
            [
                "backtest",
                "--prices",
                str(folder),
                "--rule",
                "ema_cross",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["asset_class_calendar"] == "crypto"  # the densest grid present sets the pace
    assert (
        main(
            [
                "backtest",
                "--prices",
                f"MSFT={folder}/MSFT_5m.csv",
                "--rule",
                "ema_cross",
                "--out",
                str(tmp_path / "o2"),
            ]
        )
        == 2
    )
    assert "ticker='MSFT': asset class unknown" in capsys.readouterr().err
