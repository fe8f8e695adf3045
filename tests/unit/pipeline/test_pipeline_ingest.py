"""ingest_bars: validated batches into a real DuckDB store, with their asset classes."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.errors import InputError
from app.pipeline.bar_sources import BarRequest, read_offline
from app.pipeline.ingest import ingest_bars
from app.sim.config import SimConfig
from app.sim.files import write_simulation
from app.sim.market import SimulatedMarket
from app.store import DuckDBStore
from app.types import AssetClass
from tests.builders import bars_frame


@pytest.fixture(scope="module")
def sim_folder(tmp_path_factory):
    result = SimulatedMarket(SimConfig(seed=3, days=1)).run()
    return write_simulation(result, tmp_path_factory.mktemp("sim") / "sim"), result


def test_a_sim_folder_brings_its_own_asset_classes(sim_folder, tmp_path) -> None:
    folder, result = sim_folder
    settings = Settings()
    request = BarRequest(source="sim", path=folder)
    with DuckDBStore(tmp_path / "s.db") as store:
        got = ingest_bars(settings, store, request, read_offline(request, settings))
        assert got.rows_written == sum(len(f) for f in result.bars.values())
        assert dict(got.asset_classes) == dict(result.asset_classes)
        assert store.asset_classes() == dict(result.asset_classes)
        again = ingest_bars(settings, store, request, read_offline(request, settings))
    assert again.rows_written == 0 and again.duplicates_skipped == got.rows_written
    summary = got.to_dict()
    assert list(summary)[:5] == ["source", "store", "symbols", "inputs", "asset_classes"]
    assert "asset_class" not in summary and "incomplete_bins_dropped" not in summary


def test_a_file_outside_the_universe_is_stored_without_a_class_unless_given(tmp_path) -> None:
    csv = tmp_path / "XRPUSDT_5m.csv"
    bars_frame(n=20, symbol="XRPUSDT").drop(columns="symbol").to_csv(csv, index=False)
    settings = Settings()
    with DuckDBStore(":memory:") as store:
        request = BarRequest(source="csv", path=csv)
        got = ingest_bars(settings, store, request, read_offline(request, settings))
        assert got.rows_written == 20 and store.asset_classes() == {}
        request = BarRequest(source="csv", path=csv, asset_class=AssetClass.CRYPTO)
        got = ingest_bars(settings, store, request, read_offline(request, settings))
        assert store.asset_classes() == {"XRPUSDT": AssetClass.CRYPTO}
        assert got.to_dict()["asset_class"] == "crypto"
        conflicting = BarRequest(source="csv", path=csv, asset_class=AssetClass.FOREX)
        with pytest.raises(InputError, match="XRPUSDT is crypto in the store, not forex"):
            ingest_bars(settings, store, conflicting, read_offline(conflicting, settings))


def test_bad_requests_name_the_field() -> None:
    with pytest.raises(InputError, match=r"--source='ftp'"):
        BarRequest(source="ftp")
    with pytest.raises(InputError, match=r"--as 'X' needs exactly one --symbol"):
        BarRequest(source="ccxt", symbols=("A/B", "C/D"), store_as="X")
    with pytest.raises(InputError, match="--source csv needs --path"):
        read_offline(BarRequest(source="csv"), Settings())
