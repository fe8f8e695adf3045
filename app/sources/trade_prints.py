"""Trade prints -> ``trade_print`` flow events, and the large ones -> ``block_trade``.

A print is public when it prints, so ``published_at`` = ``ts``. Prints of one symbol sharing
a timestamp are one event (sizes summed, notional summed): the flow table keys on
(symbol, ts, kind). ``trade_print`` value = size (shares / coins); ``block_trade`` value =
the measure that made it a block (size or notional, per the rule).

A print is a block when its measure is at least the rule's fixed floor and above the rule's
percentile of the *previous* ``window`` prints of its symbol (never itself or later ones), and
at least ``min_history`` prints came before it. ``history`` seeds those windows (the stored
prints before a resumed poll), so a resumed run classifies as an uninterrupted one.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from app.errors import InputError
from app.sources.side_batch import BadRow, SideBatch, parse_iso_utc
from app.types import FlowPoint

PRINT_COLUMNS = ("ts", "symbol", "price", "size")


@dataclass(frozen=True, slots=True)
class TradePrint:
    symbol: str
    ts: datetime
    price: float
    size: float
    side: str = ""  # buy / sell when the venue says (the taker's side), else ""

    @property
    def notional(self) -> float:
        return self.price * self.size


@dataclass(frozen=True, slots=True)
class BlockRule:
    """When a print is a block: measure >= ``floor`` and > ``percentile`` of past prints."""

    measure: str = "notional"  # or "size"
    percentile: float = 99.0
    window: int = 1000
    min_history: int = 50
    floor: float = 0.0

    def __post_init__(self) -> None:
        if self.measure not in ("notional", "size"):
            raise InputError(f"BlockRule.measure={self.measure!r}: expected notional|size")
        if not 0.0 < self.percentile < 100.0:
            raise InputError(f"BlockRule.percentile={self.percentile!r}: must be in (0, 100)")
        if self.window < 1 or self.min_history < 1 or self.min_history > self.window:
            raise InputError(
                f"BlockRule.window={self.window!r}, min_history={self.min_history!r}: need "
                "1 <= min_history <= window"
            )
        if not (math.isfinite(self.floor) and self.floor >= 0):
            raise InputError(f"BlockRule.floor={self.floor!r}: must be >= 0")

    def value(self, p: TradePrint) -> float:
        return p.notional if self.measure == "notional" else p.size


def merge_same_instant(prints: Iterable[TradePrint]) -> list[TradePrint]:
    """Prints sorted by (symbol, ts); those sharing (symbol, ts) summed into one
    (price = the size-weighted mean, so the notional is kept)."""
    groups: dict[tuple[str, datetime], list[TradePrint]] = defaultdict(list)
    for p in prints:
        groups[(p.symbol, p.ts)].append(p)
    out = []
    for (symbol, ts), group in sorted(groups.items()):
        size = sum(p.size for p in group)
        notional = sum(p.notional for p in group)
        sides = {p.side for p in group}
        side = sides.pop() if len(sides) == 1 else ""
        out.append(TradePrint(symbol, ts, notional / size, size, side))
    return out


def print_events(
    prints: Iterable[TradePrint],
    rule: BlockRule,
    history: Mapping[str, Sequence[float]] | None = None,
) -> list[FlowPoint]:
    """``trade_print`` per print and ``block_trade`` per block (see the module docstring).

    ``history``: per symbol, the rule's measure of earlier prints, oldest first.
    """
    past: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=rule.window))
    for symbol, values in (history or {}).items():
        past[symbol].extend(values)
    out: list[FlowPoint] = []
    for p in merge_same_instant(prints):
        out.append(FlowPoint(p.symbol, "trade_print", p.ts, p.ts, p.size))
        measure = rule.value(p)
        seen = past[p.symbol]
        if len(seen) >= rule.min_history and measure >= rule.floor:
            if measure > float(np.percentile(np.fromiter(seen, float), rule.percentile)):
                out.append(FlowPoint(p.symbol, "block_trade", p.ts, p.ts, measure))
        seen.append(measure)
    return out


def _positive(raw: str | None, field: str) -> float:
    try:
        value = float(raw or "")
    except ValueError:
        raise BadRow(f"bad_{field}") from None
    if not (math.isfinite(value) and value > 0):
        raise BadRow(f"bad_{field}")
    return value


def _csv_print(row: Mapping[str, str], assume_utc: bool) -> TradePrint:
    symbol = (row.get("symbol") or "").strip().upper()
    if not symbol:
        raise BadRow("missing_symbol")
    side = (row.get("side") or "").strip().lower()
    if side not in ("", "buy", "sell", "b", "s"):
        raise BadRow("bad_side")
    side = {"b": "buy", "s": "sell"}.get(side, side)
    return TradePrint(
        symbol,
        parse_iso_utc(row.get("ts") or "", assume_utc=assume_utc),
        _positive(row.get("price"), "price"),
        _positive(row.get("size"), "size"),
        side,
    )


def read_prints_csv(
    path: Path | str, *, assume_utc: bool = False
) -> tuple[list[TradePrint], SideBatch[FlowPoint]]:
    """Prints of a ``ts,symbol,price,size[,side]`` CSV, and a batch holding the counts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prints file {path} does not exist")
    batch: SideBatch[FlowPoint] = SideBatch(str(path))
    prints: list[TradePrint] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in PRINT_COLUMNS if c not in header]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing} for a prints file")
        reader.fieldnames = header
        for row in reader:
            batch.rows_read += 1
            try:
                prints.append(_csv_print(row, assume_utc))
            except BadRow as bad:
                batch.rejected[bad.reason] += 1
    return prints, batch
