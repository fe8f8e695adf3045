"""The symbols the simulator knows, with the scale of each (price, volatility, volume)."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Asset
from app.types import AssetClass


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """Scale of one simulated symbol: start price, 5-minute vol, volume, flow units."""

    price: float
    bar_sigma: float  # std of a 5-minute log return in the normal regime, profile 1
    volume: float  # typical bar volume (base units, shares or ticks)
    decimals: int  # price tick as decimals
    flow_scale: float = 0.0  # std of the hourly exchange net flow (crypto, native units)
    gap_bars: float = 0.0  # variance of the session-open gap, in bars of normal variance


CLASS_DEFAULTS: dict[AssetClass, SymbolProfile] = {
    AssetClass.CRYPTO: SymbolProfile(100.0, 0.0020, 5_000.0, 4, flow_scale=50_000.0),
    AssetClass.STOCKS: SymbolProfile(100.0, 0.0012, 200_000.0, 2, gap_bars=16.0),
    AssetClass.FOREX: SymbolProfile(1.0, 0.00020, 300.0, 5, gap_bars=4.0),
}

CATALOG: dict[str, tuple[Asset, SymbolProfile]] = {
    "BTCUSDT": (
        Asset(symbol="BTCUSDT", asset_class=AssetClass.CRYPTO, name="Bitcoin", aliases=("BTC",)),
        SymbolProfile(60_000.0, 0.0012, 120.0, 2, flow_scale=400.0),
    ),
    "ETHUSDT": (
        Asset(
            symbol="ETHUSDT",
            asset_class=AssetClass.CRYPTO,
            name="Ethereum",
            aliases=("ETH", "Ether"),
        ),
        SymbolProfile(3_000.0, 0.0013, 1_500.0, 2, flow_scale=6_000.0),
    ),
    "SOLUSDT": (
        Asset(symbol="SOLUSDT", asset_class=AssetClass.CRYPTO, name="Solana", aliases=("SOL",)),
        SymbolProfile(150.0, 0.0022, 20_000.0, 3, flow_scale=80_000.0),
    ),
    "AAPL": (
        Asset(symbol="AAPL", asset_class=AssetClass.STOCKS, name="Apple", aliases=("Apple Inc.",)),
        SymbolProfile(200.0, 0.0008, 400_000.0, 2, gap_bars=16.0),
    ),
    "MSFT": (
        Asset(symbol="MSFT", asset_class=AssetClass.STOCKS, name="Microsoft"),
        SymbolProfile(420.0, 0.0008, 250_000.0, 2, gap_bars=16.0),
    ),
    "EURUSD": (
        Asset(
            symbol="EURUSD",
            asset_class=AssetClass.FOREX,
            name="Euro",
            aliases=("euro", "single currency"),
        ),
        SymbolProfile(1.08, 0.00017, 300.0, 5, gap_bars=4.0),
    ),
}

DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "AAPL", "EURUSD")


def catalog_assets(symbols: tuple[str, ...] | list[str]) -> tuple[Asset, ...]:
    """Assets of the built-in catalog by symbol; an unknown symbol is a ValueError naming it."""
    unknown = [s for s in symbols if s not in CATALOG]
    if unknown:
        raise ValueError(f"symbols={unknown!r}: not in the simulator catalog {sorted(CATALOG)}")
    return tuple(CATALOG[s][0] for s in symbols)


def profile_for(asset: Asset) -> SymbolProfile:
    entry = CATALOG.get(asset.symbol)
    return entry[1] if entry else CLASS_DEFAULTS[asset.asset_class]
