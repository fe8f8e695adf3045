"""Which asset class a job uses: the store's record first, a flag must agree, then the universe."""

from __future__ import annotations

import json

import pytest

from app.config import Settings
from app.errors import InputError
from app.pipeline.assets import (
    file_asset_classes,
    manifest_classes,
    one_asset_class,
    store_asset_class,
    store_asset_classes,
)
from app.sim.config import SimConfig
from app.sim.market import SimulatedMarket
from app.store import DuckDBStore
from app.types import AssetClass

CRYPTO, STOCKS, FOREX = AssetClass.CRYPTO, AssetClass.STOCKS, AssetClass.FOREX


@pytest.fixture
def store():
    with DuckDBStore(":memory:") as s:
        s.record_asset_classes({"XRPUSDT": CRYPTO, "AAPL": FOREX})  # AAPL: store beats universe
        yield s


def test_the_store_decides_and_a_flag_must_agree(store) -> None:
    settings = Settings()
    assert store_asset_class(store, "XRPUSDT", None, settings) is CRYPTO
    assert store_asset_class(store, "XRPUSDT", CRYPTO, settings) is CRYPTO
    assert store_asset_class(store, "AAPL", None, settings) is FOREX
    with pytest.raises(InputError, match=r"--asset-class=stocks conflicts .* 'AAPL' as forex"):
        store_asset_class(store, "AAPL", STOCKS, settings)


def test_unknown_to_the_store_the_flag_then_the_universe_decide(store) -> None:
    settings = Settings()
    assert store_asset_class(store, "DOGE", STOCKS, settings) is STOCKS
    assert store_asset_class(store, "ETHUSDT", None, settings) is CRYPTO  # universe
    with pytest.raises(InputError, match=r"'DOGE'.*pass --asset-class"):
        store_asset_class(store, "DOGE", None, settings)


def test_one_class_per_training_run(store) -> None:
    classes = store_asset_classes(store, ["XRPUSDT", "ETHUSDT"], {}, Settings())
    assert one_asset_class(classes) is CRYPTO
    with pytest.raises(InputError, match=r"one asset class per run, found \['crypto', 'forex'\]"):
        one_asset_class(store_asset_classes(store, ["XRPUSDT", "AAPL"], {}, Settings()))


def test_files_flag_per_ticker_then_flag_then_manifest_then_universe(tmp_path) -> None:
    SimulatedMarket(SimConfig.for_symbols(["MSFT"], days=1)).run().manifest.save(tmp_path)
    declared = {"SIM1": "stocks"}
    assert manifest_classes(tmp_path) == {"MSFT": "stocks"}
    settings = Settings()
    got = file_asset_classes(["X=forex"], ["X", "SIM1", "BTCUSDT"], settings, declared)
    assert got == {"X": FOREX, "SIM1": STOCKS, "BTCUSDT": CRYPTO}
    got = file_asset_classes(["crypto"], ["SIM1"], settings, declared)
    assert got == {"SIM1": CRYPTO}
    with pytest.raises(InputError, match=r"ticker='ZZZ': asset class unknown"):
        file_asset_classes([], ["ZZZ"], settings, {})
    with pytest.raises(InputError, match=r"--asset-class 'bonds'"):
        file_asset_classes(["bonds"], ["X"], settings, {})


def test_an_unreadable_manifest_names_the_field(tmp_path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"symbols": ["not", "a", "map"]}))
    with pytest.raises(InputError, match=r"field 'generator' is missing"):
        manifest_classes(tmp_path)
    assert manifest_classes(tmp_path / "nowhere") == {}
