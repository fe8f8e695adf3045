"""Write a run to a folder: metrics.json, trades.csv, equity.csv, fills.csv and equity.png.

Timestamps are written as ISO-8601 UTC with ``Z``. ``equity.csv`` has one row per bar close:
``ts`` is the bar's OPEN time (the frame convention), ``equity`` its value at that bar's close.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from app.backtest.engine import BacktestResult

TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def write_report(result: BacktestResult, out: Path, metrics: dict[str, object]) -> dict[str, str]:
    """Write every output file of a run; returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out / "metrics.json",
        "trades": out / "trades.csv",
        "equity": out / "equity.csv",
        "fills": out / "fills.csv",
        "chart": out / "equity.png",
    }
    paths["metrics"].write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    _with_iso(result.trades, ("entry_ts", "exit_ts")).to_csv(paths["trades"], index=False)
    _with_iso(result.equity, ("ts",)).to_csv(paths["equity"], index=False)
    _with_iso(result.fills, ("ts",)).to_csv(paths["fills"], index=False)
    plot_equity(result, paths["chart"])
    return {k: str(v) for k, v in paths.items()}


def _with_iso(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = frame.copy()
    for col in columns:
        frame[col] = frame[col].dt.strftime(TS_FORMAT)
    return frame


def plot_equity(result: BacktestResult, path: Path) -> None:
    """Equity curve over drawdown, with HALTED bars shaded (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eq = result.equity
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    try:
        x = eq["ts"].dt.tz_convert(None)
        top.plot(x, eq["equity"], lw=1.0, color="tab:blue", label="equity")
        top.axhline(result.initial_equity, color="grey", lw=0.6, ls="--")
        halted = (eq["risk_state"] == "HALTED").to_numpy()
        if halted.any():
            top.fill_between(
                x,
                eq["equity"].min(),
                eq["equity"].max(),
                where=halted,
                color="tab:red",
                alpha=0.12,
                step="post",
                label="HALTED",
            )
        top.set_ylabel("equity")
        top.legend(loc="upper left")
        bottom.fill_between(x, eq["drawdown"] * 100.0, 0.0, color="tab:red", alpha=0.5, step="post")
        bottom.set_ylabel("drawdown %")
        top.set_title("Backtest: equity (net of fees and slippage) and drawdown")
        fig.tight_layout()
        fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)
