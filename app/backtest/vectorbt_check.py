"""vectorbt as an independent referee of the backtester's accounting.

Every fill of a run (risk-approved entries, signal closes, flattens, and the stop-loss /
take-profit exits at the intrabar price where they happened) is replayed as an order through
``vbt.Portfolio.from_orders``, with the same fee rate and slippage per order. vectorbt applies
them its own way (``price * (1 +/- slippage)``, fee = rate x filled value), keeps its own cash and
positions, and values the account at each bar close; its final value (and its value at every bar
close) must equal ours.

How intrabar and same-bar orders are expressed: vectorbt takes at most one order per row and
column, while one bar can hold several fills (a close and a new entry at the open, then a stop
inside the bar). So the replay has one row per fill, in execution order, and one row per bar close
(size NaN, ``close`` = that bar's closes, forward-filled across tickers). Each fill row carries the
fill's reference price (the open, the stop or take-profit level) as ``price``. Several tickers are
columns of one group with shared cash (``group_by=True, cash_sharing=True``).

vectorbt refuses orders that its cash cannot cover; our account may dip below zero cash by the fee
of a fully invested entry. The replay therefore starts with ``initial_equity + cash_buffer`` and
subtracts the buffer from every value: orders are sized in units, so the buffer changes nothing
but vectorbt's permission to execute them (``allow_partial=False, raise_reject=True`` make any
refusal an error rather than a silent resize).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from app.backtest.engine import BacktestResult


@dataclass(frozen=True, slots=True)
class ReplayInputs:
    """The arrays handed to ``from_orders`` (rows: fills and bar closes; columns: tickers)."""

    close: pd.DataFrame
    price: pd.DataFrame
    size: pd.DataFrame
    fees: pd.DataFrame
    slippage: pd.DataFrame
    mark_rows: np.ndarray  # row positions of the bar closes (align with result.equity)


@dataclass(frozen=True, slots=True)
class RefereeReport:
    ours_final_equity: float
    vectorbt_final_equity: float
    rel_error: float
    max_rel_error_curve: float  # worst relative gap over every bar close
    n_orders: int

    def ok(self, tol: float = 1e-6) -> bool:
        return self.rel_error <= tol and self.max_rel_error_curve <= tol

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "ours_final_equity": self.ours_final_equity,
            "vectorbt_final_equity": self.vectorbt_final_equity,
            "rel_error": self.rel_error,
            "max_rel_error_curve": self.max_rel_error_curve,
            "n_orders": self.n_orders,
            "ok": self.ok(),
        }


def replay_inputs(result: BacktestResult, marks: pd.DataFrame) -> ReplayInputs:
    """Build the ``from_orders`` arrays from a run's fill log and its bar closes.

    ``marks`` has one row per equity row of ``result`` (same ``ts``) and one column per ticker
    with that bar's close (NaN where the ticker had no bar then).
    """
    fills = result.fills
    tickers = list(marks.columns)
    n_fill, n_mark = len(fills), len(marks)
    # Row order: by bar time; inside a bar every fill (execution order) before the close.
    fill_ts = pd.DatetimeIndex(fills["ts"]).asi8 if n_fill else np.empty(0, np.int64)
    mark_ts = pd.DatetimeIndex(result.equity["ts"]).asi8
    keys_ts = np.concatenate([fill_ts, mark_ts])
    keys_kind = np.concatenate([np.zeros(n_fill, np.int8), np.ones(n_mark, np.int8)])
    keys_seq = np.concatenate([np.arange(n_fill), np.zeros(n_mark, np.int64)])
    order = np.lexsort((keys_seq, keys_kind, keys_ts))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    fill_rows, mark_rows = rank[:n_fill], rank[n_fill:]

    n_rows = n_fill + n_mark
    n_col = len(tickers)
    close = np.full((n_rows, n_col), np.nan)
    close[mark_rows] = marks.to_numpy(np.float64)
    close = pd.DataFrame(close, columns=tickers).ffill().bfill()
    price = np.full((n_rows, n_col), np.nan)
    size = np.full((n_rows, n_col), np.nan)
    fees = np.zeros((n_rows, n_col))
    slippage = np.zeros((n_rows, n_col))
    if n_fill:
        col = pd.Index(tickers).get_indexer(fills["ticker"])
        if (col < 0).any():
            raise ValueError("a fill names a ticker missing from marks")
        price[fill_rows, col] = fills["ref_price"].to_numpy(np.float64)
        size[fill_rows, col] = (fills["side"] * fills["qty"]).to_numpy(np.float64)
        fees[fill_rows, col] = fills["fee_rate"].to_numpy(np.float64)
        slippage[fill_rows, col] = fills["slippage"].to_numpy(np.float64)
    frame = lambda a: pd.DataFrame(a, columns=tickers)  # noqa: E731
    return ReplayInputs(
        close=close,
        price=frame(price).fillna(close),
        size=frame(size),
        fees=frame(fees),
        slippage=frame(slippage),
        mark_rows=mark_rows,
    )


def marks_frame(bars: dict[str, pd.DataFrame], result: BacktestResult) -> pd.DataFrame:
    """Closes per ticker on the run's equity rows (NaN where a ticker had no bar)."""
    index = pd.DatetimeIndex(result.equity["ts"])
    cols = {}
    for sym, frame in bars.items():
        series = pd.Series(
            frame["close"].to_numpy(np.float64),
            index=pd.DatetimeIndex(frame["ts"].astype("datetime64[ns, UTC]")),
        )
        cols[sym] = series.reindex(index).to_numpy()
    return pd.DataFrame(cols)


def run_vectorbt(inputs: ReplayInputs, init_cash: float):  # -> vbt.Portfolio
    """The vectorbt portfolio of the replay (imports vectorbt lazily: it compiles on first use)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(".cache") / "numba"))
    import vectorbt as vbt

    return vbt.Portfolio.from_orders(
        close=inputs.close,
        size=inputs.size,
        size_type="amount",
        direction="both",
        price=inputs.price,
        fees=inputs.fees,
        slippage=inputs.slippage,
        init_cash=init_cash,
        group_by=True,
        cash_sharing=True,
        allow_partial=False,
        raise_reject=True,
        min_size=0.0,  # vectorbt's default 1e-8 would refuse the tiny orders of a drained account
        ffill_val_price=True,
    )


def referee(
    result: BacktestResult, bars: dict[str, pd.DataFrame], cash_buffer: float | None = None
) -> RefereeReport:
    """Replay ``result`` through vectorbt and compare final equity and the equity curve."""
    buffer = 10.0 * result.initial_equity if cash_buffer is None else cash_buffer
    inputs = replay_inputs(result, marks_frame(bars, result))
    pf = run_vectorbt(inputs, result.initial_equity + buffer)
    value = np.asarray(pf.value()).reshape(-1) - buffer
    curve = value[inputs.mark_rows]
    ours = result.equity["equity"].to_numpy(np.float64)
    theirs_final = float(value[-1]) if value.size else result.initial_equity
    ours_final = result.final_equity
    gaps = np.abs(curve - ours) / np.abs(ours) if ours.size else np.zeros(1)
    return RefereeReport(
        ours_final_equity=ours_final,
        vectorbt_final_equity=theirs_final,
        rel_error=abs(theirs_final - ours_final) / abs(ours_final),
        max_rel_error_curve=float(gaps.max()),
        n_orders=int(np.sum(pf.orders.count())),
    )
