"""``run_backtest_job``: signals -> the risk engine -> next-open fills -> metrics and report.

Takes bars (ticker -> frame), a checked ``SignalBatch`` and each ticker's asset class;
writes the report files into ``out``. ``store_bars`` and ``store_classes`` read the bars
and the recorded asset classes from a store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from app.backtest.engine import BacktestConfig, run_backtest
from app.backtest.report import write_report
from app.backtest.signals_io import SignalBatch
from app.config import Settings
from app.errors import InputError
from app.pipeline.assets import split_given, store_asset_classes
from app.store import TimeSeriesStore
from app.types import AssetClass

APPROVED = ("OPEN_LONG", "OPEN_SHORT", "CLOSE")


@dataclass(frozen=True, slots=True)
class BacktestJobResult:
    """The metrics JSON (``to_dict()``): performance, signal counts, rejects, report files."""

    metrics: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.metrics[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.metrics.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.metrics)


def run_backtest_job(
    settings: Settings,
    bars: Mapping[str, pd.DataFrame],
    signals: SignalBatch,
    classes: Mapping[str, AssetClass],
    out: Path,
    *,
    initial_equity: float = 100_000.0,
    price_rejects: Mapping[str, Mapping[str, int]] | None = None,
    vectorbt_check: bool = False,
) -> BacktestJobResult:
    """Run the event-driven backtest and write metrics, equity and trades into ``out``."""
    if initial_equity <= 0:
        raise InputError(f"--initial-equity={initial_equity!r}: must be > 0")
    config = BacktestConfig(initial_equity=initial_equity, risk=settings.risk, costs=settings.costs)
    result = run_backtest(dict(bars), signals.signals, dict(classes), config)
    metrics: dict[str, Any] = result.metrics()
    metrics["signals"] = signals.summary()
    metrics["signals"]["risk_approved"] = sum(
        v for k, v in result.decisions.items() if str(k) in APPROVED
    )
    metrics["price_rows_rejected"] = {k: v for k, v in (price_rejects or {}).items() if v}
    if vectorbt_check:
        from app.backtest.vectorbt_check import referee

        metrics["vectorbt_check"] = referee(result, dict(bars)).to_dict()
    metrics["files"] = write_report(result, out, metrics)
    return BacktestJobResult(metrics)


def store_bars(store: TimeSeriesStore, tickers: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Bars per ticker from the store (every symbol in it when ``tickers`` is empty)."""
    wanted = list(tickers) or store.symbols("bars")
    bars = {}
    for sym in wanted:
        frame = store.read_bars(sym)
        if frame.empty:
            raise InputError(f"store {store.url}: no bars for ticker={sym!r}")
        bars[sym] = frame.reset_index(drop=True)
    return bars


def store_classes(
    store: TimeSeriesStore, tickers: Sequence[str], given: Sequence[str], settings: Settings
) -> dict[str, AssetClass]:
    """The store's recorded class per ticker; ``--asset-class`` values must agree with it."""
    per_ticker, default = split_given(given)
    flags = {t: per_ticker.get(t, default) for t in tickers}
    return store_asset_classes(
        store, tickers, {t: c for t, c in flags.items() if c is not None}, settings
    )
