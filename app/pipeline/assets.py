"""Which asset class a symbol belongs to, for every job that reads bars.

Read from a store, the class is the one ingest recorded there (the ``symbols`` table); a
class given on the command line must agree with it, and a conflict is an error naming
both. Where the store does not know the symbol, the given class, then the configured
universe, decides. Files keep the old order: per-ticker flag, flag, a simulator folder's
manifest, the universe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from app.config import Settings
from app.errors import InputError
from app.sim.manifest import MANIFEST_FILE, SimManifest
from app.store import TimeSeriesStore
from app.types import AssetClass


def parse_asset_class(text: str, flag: str = "--asset-class") -> AssetClass:
    try:
        return AssetClass(text.lower())
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected crypto, stocks or forex") from None


def store_asset_class(
    store: TimeSeriesStore, symbol: str, given: AssetClass | None, settings: Settings
) -> AssetClass:
    """The class of ``symbol`` in ``store``; ``given`` must agree with it."""
    return store_asset_classes(store, [symbol], {symbol: given} if given else {}, settings)[symbol]


def store_asset_classes(
    store: TimeSeriesStore,
    symbols: Sequence[str],
    given: Mapping[str, AssetClass],
    settings: Settings,
) -> dict[str, AssetClass]:
    """Per symbol: the store's class (``given`` must agree), else ``given``, else the universe."""
    stored = store.asset_classes()
    universe = {a.symbol: a.asset_class for a in settings.universe}
    out: dict[str, AssetClass] = {}
    for symbol in symbols:
        flag = given.get(symbol)
        known = stored.get(symbol)
        if known is not None and flag is not None and known is not flag:
            raise InputError(
                f"--asset-class={flag.value} conflicts with the store: {store.url} records "
                f"{symbol!r} as {known.value}"
            )
        cls = known or flag or universe.get(symbol)
        if cls is None:
            raise InputError(
                f"--symbol={symbol!r}: asset class unknown (not recorded in the store's symbols "
                "table, not in the configured universe); pass --asset-class"
            )
        out[symbol] = cls
    return out


def one_asset_class(classes: Mapping[str, AssetClass]) -> AssetClass:
    """The single class of a set of symbols trained together; InputError naming a mix."""
    found = sorted({c.value for c in classes.values()})
    if len(found) != 1:
        raise InputError(f"symbols {dict((s, c.value) for s, c in classes.items())}: one asset "
                         f"class per run, found {found}")  # fmt: skip
    return AssetClass(found[0])


def manifest_classes(folder: Path) -> dict[str, str]:
    """Asset classes a simulation folder declares in its manifest (empty for other folders)."""
    if not (folder / MANIFEST_FILE).is_file():
        return {}
    return {s: c.value for s, c in SimManifest.load(folder).asset_classes.items()}


def file_asset_classes(
    given: Sequence[str], tickers: Sequence[str], settings: Settings, declared: Mapping[str, str]
) -> dict[str, AssetClass]:
    """Per ticker: --asset-class TICKER=CLASS, else --asset-class CLASS, else the folder's
    manifest.json, else the configured universe."""
    per_ticker, default = split_given(given)
    universe = {a.symbol: a.asset_class for a in settings.universe}
    out: dict[str, AssetClass] = {}
    for ticker in tickers:
        if ticker in per_ticker:
            out[ticker] = per_ticker[ticker]
        elif default is not None:
            out[ticker] = default
        elif ticker in declared:
            out[ticker] = parse_asset_class(declared[ticker])
        elif ticker in universe:
            out[ticker] = universe[ticker]
        else:
            raise InputError(
                f"ticker={ticker!r}: asset class unknown (not in the configured universe); "
                "pass --asset-class"
            )
    return out


def split_given(given: Sequence[str]) -> tuple[dict[str, AssetClass], AssetClass | None]:
    """``["stocks", "BTCUSDT=crypto"]`` -> ({"BTCUSDT": crypto}, stocks)."""
    per_ticker: dict[str, AssetClass] = {}
    default: AssetClass | None = None
    for item in given:
        ticker, sep, cls = item.partition("=")
        if sep:
            per_ticker[ticker] = parse_asset_class(cls)
        else:
            default = parse_asset_class(item)
    return per_ticker, default
