"""``VenueBars``: a venue's closed 5-minute bars of several symbols, polled as they complete.

The live counterpart of ``app.live.replay.Replay`` for a polling source (ccxt's
``fetch_ohlcv`` through ``app.sources.ccxt_source.CcxtSource``): ``warmup()`` backfills the
bars a model's windows need before trading starts, ``due()`` says when the next bar closes (plus
a grace for the venue to publish it) and ``poll()`` returns the bars closed since the last one
seen, every symbol's in time order. The forming bar never comes out (the source only returns
closed bars by the injected clock), a bar already returned never comes again, and a row that
breaks a ``Bar`` invariant is rejected and counted by its reason while the others are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from app.errors import InputError
from app.types import BAR_INTERVAL, Bar, InvalidField, require_utc

log = logging.getLogger(__name__)


class BarPoller(Protocol):
    """What ``CcxtSource`` offers (closed bars only, by its clock)."""

    def backfill(
        self, symbol: str, since: datetime, until: datetime | None = None
    ) -> pd.DataFrame: ...

    def poll_closed(self, symbol: str, last_ts: datetime | None) -> pd.DataFrame: ...


class VenueBars:
    """Closed bars of ``markets`` (store symbol -> the venue's symbol, e.g. BTCUSDT -> BTC/USDT)."""

    def __init__(
        self,
        source: BarPoller,
        markets: Mapping[str, str],
        clock: Callable[[], datetime],
        *,
        grace: timedelta = timedelta(seconds=2),
        resume_after: Mapping[str, datetime | None] | None = None,
    ) -> None:
        if not markets:
            raise InputError("markets: at least one symbol to poll")
        if grace < timedelta(0):
            raise InputError(f"grace={grace!r}: must be >= 0")
        self.source = source
        self.markets = dict(markets)
        self.clock = clock
        self.grace = grace
        self.last: dict[str, datetime | None] = {s: None for s in self.markets}
        for symbol, ts in (resume_after or {}).items():
            if symbol in self.last and ts is not None:
                self.last[symbol] = require_utc("VenueBars", "resume_after", ts)
        self.rejected: dict[str, dict[str, int]] = {}

    def warmup(self, bars: int) -> list[Bar]:
        """The last ``bars`` closed bars of every symbol not resumed from a stored bar, and
        every bar closed after its stored one of a resumed symbol (a restarted feed catches up
        before it trades: none lost while it was down, none taken twice)."""
        if bars < 1:
            raise InputError(f"warm-up bars={bars!r}: must be >= 1")
        since = self.clock() - (bars + 1) * BAR_INTERVAL
        frames = {
            symbol: self.source.backfill(market, since)
            if self.last[symbol] is None
            else self.source.poll_closed(market, self.last[symbol])
            for symbol, market in self.markets.items()
        }
        return self._take_all(frames)

    def poll(self) -> list[Bar]:
        """Every bar closed since the last one taken, per symbol, oldest first."""
        frames = {
            symbol: self.source.poll_closed(market, self.last[symbol])
            for symbol, market in self.markets.items()
        }
        return self._take_all(frames)

    def _take_all(self, frames: Mapping[str, pd.DataFrame]) -> list[Bar]:
        """Take the bars only once every symbol answered: a venue error on one symbol must not
        mark another's bars as taken when they are never delivered (the error propagates)."""
        out: list[Bar] = []
        for symbol, frame in frames.items():
            out += self._take(symbol, frame)
        return ordered(out)

    def due(self) -> datetime:
        """When the next bar closes (by the clock), plus the grace."""
        return next_close(self.clock()) + self.grace

    def _take(self, symbol: str, frame: pd.DataFrame) -> list[Bar]:
        last = self.last[symbol]
        bars: list[Bar] = []
        for bar_or_reason in _bars(frame, symbol):
            if isinstance(bar_or_reason, str):
                per = self.rejected.setdefault(symbol, {})
                per[bar_or_reason] = per.get(bar_or_reason, 0) + 1
                continue
            if last is None or bar_or_reason.ts > last:
                bars.append(bar_or_reason)
                last = bar_or_reason.ts
        self.last[symbol] = last
        return bars


def _bars(frame: pd.DataFrame, symbol: str) -> list[Bar | str]:
    """Each row as a ``Bar``, or the reason it is not one (logged with the field and value)."""
    if frame.empty:
        return []
    ts = frame["ts"].astype("datetime64[ns, UTC]")
    cols = [frame[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")]
    out: list[Bar | str] = []
    for i, t in enumerate(ts):
        try:
            out.append(Bar(symbol, t.to_pydatetime(), *(float(c[i]) for c in cols)))
        except InvalidField as exc:
            log.warning("venue bar rejected: %s", exc)
            out.append(exc.reason)
    return out


def next_close(now: datetime) -> datetime:
    """When the bar forming at ``now`` closes."""
    step = BAR_INTERVAL.total_seconds()
    return datetime.fromtimestamp((now.timestamp() // step + 1) * step, tz=now.tzinfo)


def ordered(bars: Sequence[Bar]) -> list[Bar]:
    """Oldest first, symbols in a fixed order within a bar time."""
    return sorted(bars, key=lambda b: (b.ts, b.symbol))


def ccxt_markets(symbols: Sequence[str], listed: Sequence[str]) -> dict[str, str]:
    """Store symbols (BTCUSDT) -> the venue's spot symbols (BTC/USDT); unknown ones name the
    symbol (``InputError``)."""
    by_store = {m.replace("/", ""): m for m in listed if ":" not in m}
    missing = [s for s in symbols if s not in by_store]
    if missing:
        raise InputError(f"symbols={missing}: not listed as spot markets on the venue")
    return {s: by_store[s] for s in symbols}
