"""As-of alignment of a slower series onto a bar grid, for backends without a usable ASOF JOIN.

QuestDB joins as-of on designated timestamps only, but side inputs must be joined on
``published_at`` (when the value became public), so the QuestDB store aligns client-side
with this function. The DuckDB store does the same in SQL; the contract tests check that
both agree.
"""

from __future__ import annotations

import pandas as pd

from app.types import BAR_INTERVAL


def asof_align(
    bar_ts: pd.Series,
    series: pd.DataFrame,
    value_column: str,
    time_column: str,
) -> pd.DataFrame:
    """For each bar open time, the newest ``value_column`` with ``time_column <= ts + 5 min``.

    ``series`` needs ``time_column``, ``ts`` and ``value_column``. Among rows that became
    available at the same instant the one with the latest ``ts`` wins. Bars with nothing
    available yet get NaN (None for text). Returns ``ts`` (sorted) and ``value_column``.
    """
    bars = pd.DataFrame({"ts": bar_ts.astype("datetime64[ns, UTC]")}).sort_values("ts")
    bars["_known_at"] = bars["ts"] + pd.Timedelta(BAR_INTERVAL)
    if series.empty:
        bars[value_column] = float("nan")
        return bars[["ts", value_column]].reset_index(drop=True)
    right = pd.DataFrame(
        {
            "_available_at": series[time_column].astype("datetime64[ns, UTC]"),
            "_ts": series["ts"].astype("datetime64[ns, UTC]"),
            value_column: series[value_column].to_numpy(),
        }
    )
    right = (
        right.sort_values(["_available_at", "_ts"])
        .drop_duplicates("_available_at", keep="last")
        .drop(columns="_ts")
    )
    merged = pd.merge_asof(
        bars, right, left_on="_known_at", right_on="_available_at", direction="backward"
    )
    return merged[["ts", value_column]].reset_index(drop=True)
