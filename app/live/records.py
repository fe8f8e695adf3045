"""A session's records as the files ``--out DIR`` receives.

``signals.csv`` (``ts,ticker,signal,confidence,p_up,p_down,p_flat,model_version``; ``ts`` the
open of the bar the signal was computed on, as ``backtest --signals`` reads it),
``decisions.csv`` (``ts,ticker,action,qty,reasons``; ``ts`` the decision time, a bar close),
and ``fills.csv`` / ``equity.csv`` with the columns ``backtest`` writes
(``app.backtest.report``), so the two runs can be compared file to file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from app.backtest.engine import FILL_COLUMNS  # re-exported wherever Portfolio lives
from app.backtest.metrics import drawdown_curve
from app.backtest.report import TS_FORMAT
from app.live.series import SIGNAL_CSV_COLUMNS
from app.live.session import SessionRecords

DECISION_COLUMNS = ("ts", "ticker", "action", "qty", "reasons")


def _iso(values: object) -> pd.Series:
    return pd.Series(pd.to_datetime(values, utc=True)).dt.strftime(TS_FORMAT)


def signals_frame(records: SessionRecords) -> pd.DataFrame:
    s = records.signals
    return pd.DataFrame(
        {
            "ts": pd.to_datetime([x.ts for x in s], utc=True),
            "ticker": [x.ticker for x in s],
            "signal": [x.action.value for x in s],
            "confidence": [x.confidence for x in s],
            "p_up": [x.probs.up if x.probs else np.nan for x in s],
            "p_down": [x.probs.down if x.probs else np.nan for x in s],
            "p_flat": [x.probs.flat if x.probs else np.nan for x in s],
            "model_version": [x.model_version for x in s],
        },
        columns=list(SIGNAL_CSV_COLUMNS),
    )


def decisions_frame(records: SessionRecords) -> pd.DataFrame:
    d = records.decisions
    return pd.DataFrame(
        {
            "ts": pd.to_datetime([x.ts for x in d], utc=True),
            "ticker": [x.symbol for x in d],
            "action": [x.action.value for x in d],
            "qty": [sum(o.qty for o in x.orders) for x in d],
            "reasons": [";".join(x.reasons) for x in d],
        },
        columns=list(DECISION_COLUMNS),
    )


def fills_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(FILL_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), utc=True)
    return frame


def equity_frame(records: SessionRecords) -> pd.DataFrame:
    eq = np.asarray([r.equity for r in records.equity], dtype=np.float64)
    return pd.DataFrame(
        {
            "ts": pd.to_datetime([r.ts for r in records.equity], utc=True),
            "equity": eq,
            "drawdown": drawdown_curve(eq) if len(eq) else eq,
            "risk_state": [r.risk_state.value for r in records.equity],
        }
    )


def write_records(records: SessionRecords, fill_rows: list[tuple], out: Path) -> dict[str, str]:
    """Write the four files; returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    frames = {
        "signals": signals_frame(records),
        "decisions": decisions_frame(records),
        "fills": fills_frame(fill_rows),
        "equity": equity_frame(records),
    }
    paths = {}
    for name, frame in frames.items():
        frame = frame.copy()
        frame["ts"] = _iso(frame["ts"]).to_numpy() if len(frame) else frame["ts"]
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths[name] = str(path)
    return paths
