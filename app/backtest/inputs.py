"""The backtester's inputs: bars and signals of every ticker as plain column lists, checked
once per column (what a Signal and a MarketSnapshot per bar would refuse) and routed through the
risk engine's certain holds, with the causal Wilder ATR through each bar."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from app.broker.fill_model import FillModel, wilder_atr
from app.risk.engine import RiskEngine
from app.types import AssetClass, InvalidField, Order

if TYPE_CHECKING:
    from app.backtest.engine import BacktestConfig

BAR_NS = 5 * 60 * 1_000_000_000
SIGNAL_CODES: dict[str, int] = {"BUY": 0, "SELL": 1, "HOLD": 2}


@dataclass(slots=True)
class Ticker:
    """Columns of one ticker as Python lists (fast scalar access in the loop)."""

    symbol: str
    asset_class: AssetClass
    fill_model: FillModel
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    atr: list[float]
    signal: list[int]  # -1 = no signal on this bar, else index into _ACTIONS
    confidence: list[float]
    close_dt: list[datetime]  # bar close times (decision time)
    # -1 = no signal; else RiskEngine.certain_holds code (0 = ask decide, > 0 = certain HOLD)
    route: list[int] = field(default_factory=list)
    whole_us: bool = False  # every bar time a whole microsecond: close ns == to_ns(close_dt)
    pending: list[tuple[Order, str]] = field(default_factory=list)


def prepare_tickers(
    bars: Mapping[str, pd.DataFrame],
    signals: pd.DataFrame,
    asset_classes: Mapping[str, AssetClass],
    config: BacktestConfig,
    engine: RiskEngine,
) -> tuple[list[Ticker], list[np.ndarray]]:
    """Per-ticker column lists, causal ATR, signals aligned to bar rows and routed (decide or
    the engine's certain HOLD), and the checks a Signal / MarketSnapshot per bar would make."""
    sig_ts = ts_ns(signals["ts"]) if len(signals) else np.empty(0, dtype=np.int64)
    sig_ticker = signals["ticker"].to_numpy() if len(signals) else np.empty(0, dtype=object)
    tickers: list[Ticker] = []
    ts_arrays: list[np.ndarray] = []
    for sym, frame in bars.items():
        ts = ts_ns(frame["ts"])
        if len(ts) > 1 and not (np.diff(ts) > 0).all():
            raise ValueError(f"bars[{sym!r}].ts must be strictly increasing")
        high = frame["high"].to_numpy(np.float64)
        low = frame["low"].to_numpy(np.float64)
        close = frame["close"].to_numpy(np.float64)
        atr = wilder_atr(high, low, close, config.atr_period)
        code = np.full(len(ts), -1, dtype=np.int64)
        conf = np.zeros(len(ts), dtype=np.float64)
        mine = sig_ticker == sym
        if mine.any():
            s_ts = sig_ts[mine]
            pos = np.searchsorted(ts, s_ts)
            on_bar = (pos < len(ts)) & (ts[np.minimum(pos, len(ts) - 1)] == s_ts)
            if not on_bar.all():
                bad = pd.Timestamp(int(s_ts[~on_bar][0]), tz="UTC")
                raise ValueError(f"signal ts={bad.isoformat()} of ticker={sym!r} is not on a bar")
            words = signals.loc[mine, "signal"].to_numpy()
            code[pos] = [SIGNAL_CODES[w] for w in words]
            conf[pos] = signals.loc[mine, "confidence"].to_numpy(np.float64)
        has_signal = code >= 0
        check_signal_rows(sym, ts, conf, close, has_signal)
        route = np.where(has_signal, engine.certain_holds(code == SIGNAL_CODES["HOLD"], conf), -1)
        tickers.append(
            Ticker(
                symbol=sym,
                asset_class=asset_classes[sym],
                fill_model=FillModel.from_costs(config.costs, asset_classes[sym]),
                open=frame["open"].to_numpy(np.float64).tolist(),
                high=high.tolist(),
                low=low.tolist(),
                close=close.tolist(),
                atr=atr.tolist(),
                signal=code.tolist(),
                confidence=conf.tolist(),
                close_dt=list(datetimes(ts + BAR_NS)),
                route=route.tolist(),
                whole_us=bool((ts % 1000 == 0).all()),
            )
        )
        ts_arrays.append(ts)
    return tickers, ts_arrays


def check_signal_rows(
    sym: str, ts: np.ndarray, conf: np.ndarray, close: np.ndarray, has_signal: np.ndarray
) -> None:
    """What building a Signal and a MarketSnapshot for every signal row would refuse, checked
    once for the whole column: an empty ticker, a confidence outside [0, 1] and a close that is
    not finite > 0."""
    if has_signal.any() and (not isinstance(sym, str) or not sym.strip()):
        raise InvalidField("Signal", "symbol", sym, "bad_symbol", "empty symbol")
    bad_conf = has_signal & ~((conf >= 0.0) & (conf <= 1.0))
    if bad_conf.any():
        j = int(np.argmax(bad_conf))
        where = f"{sym} {pd.Timestamp(int(ts[j]), tz='UTC').isoformat()}"
        raise InvalidField(
            "Signal", "confidence", float(conf[j]), "out_of_range", f"{where}: not in [0, 1]"
        )
    bad_close = has_signal & ~((close > 0.0) & (close < math.inf))
    if bad_close.any():
        j = int(np.argmax(bad_close))
        where = f"{sym} {pd.Timestamp(int(ts[j]), tz='UTC').isoformat()}"
        raise InvalidField(
            "MarketSnapshot",
            "last_price",
            float(close[j]),
            "nonpositive",
            f"{where}: must be finite > 0",
        )


def datetimes(ns: np.ndarray) -> np.ndarray:
    """int64 ns -> aware UTC datetimes, vectorized (exact to the microsecond)."""
    return pd.DatetimeIndex(ns.astype("datetime64[ns]"), tz="UTC").to_pydatetime()


def ts_ns(column: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(column.astype("datetime64[ns, UTC]")).asi8.astype(np.int64)
