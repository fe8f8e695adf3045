"""The ``symbols`` table: which asset class each stored symbol belongs to.

Written by ingest, read by every command that reads a store, so ``features --store URL
--symbol XRPUSDT`` works for a symbol outside the configured universe. Both backends keep
it as an ordinary table keyed on ``(symbol, ts)`` with one fixed ``ts`` (QuestDB wants a
designated timestamp in every dedup key), so re-recording a symbol adds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from app.errors import InputError
from app.types import AssetClass

if TYPE_CHECKING:
    from app.store.base import TimeSeriesStore

SYMBOLS_TS = pd.Timestamp(0, tz="UTC")  # the one ``ts`` of every symbols row


def stored_asset_classes(store: TimeSeriesStore) -> dict[str, AssetClass]:
    """Symbol -> asset class from the ``symbols`` table (unknown class names are an error)."""
    rows = store.read("symbols")
    out: dict[str, AssetClass] = {}
    for symbol, name in zip(rows["symbol"], rows["asset_class"], strict=True):
        try:
            out[str(symbol)] = AssetClass(str(name))
        except ValueError:
            raise InputError(
                f"store {store.url}: symbols.asset_class={name!r} for {symbol!r} is not "
                "crypto, stocks or forex"
            ) from None
    return out


def record_asset_classes(store: TimeSeriesStore, classes: Mapping[str, AssetClass]) -> int:
    """Write the classes not yet recorded; InputError (nothing written) on a conflict."""
    stored = stored_asset_classes(store)
    conflicts = [
        f"{symbol} is {stored[symbol].value} in the store, not {AssetClass(cls).value}"
        for symbol, cls in sorted(classes.items())
        if symbol in stored and stored[symbol] is not AssetClass(cls)
    ]
    if conflicts:
        raise InputError(f"asset class conflict with store {store.url}: {'; '.join(conflicts)}")
    new = {s: AssetClass(c) for s, c in classes.items() if s not in stored}
    if not new:
        return 0
    frame = pd.DataFrame(
        {
            "symbol": list(new),
            "ts": pd.Series([SYMBOLS_TS] * len(new), dtype="datetime64[ns, UTC]"),
            "asset_class": [c.value for c in new.values()],
        }
    )
    return store.write("symbols", frame)
