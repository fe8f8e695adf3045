"""``SimManifest``: parsed once, typed, byte-exact on re-save, and a clear error per bad field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.config import LabelSettings
from app.errors import InputError
from app.sim.config import PlantedEffects, SimConfig
from app.sim.files import write_simulation
from app.sim.manifest import MANIFEST_FILE, SimManifest
from app.sim.market import SimulatedMarket
from app.types import AssetClass


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = SimConfig.for_symbols(
        ["BTCUSDT", "AAPL", "EURUSD"], seed=4, days=2, labels=LabelSettings(horizon=2)
    )
    return write_simulation(SimulatedMarket(cfg).run(), tmp_path_factory.mktemp("m") / "sim")


def _raw(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_FILE).read_text())


def _write(tmp_path: Path, raw: dict) -> Path:
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(raw))
    return tmp_path


def test_fields_are_typed(folder: Path) -> None:
    m = SimManifest.load(folder)
    assert m.seed == 4 and m.days == 2 and m.horizon == 2
    assert m.start.isoformat() == "2025-01-06T00:00:00+00:00"
    assert m.asset_classes == {
        "AAPL": AssetClass.STOCKS,
        "BTCUSDT": AssetClass.CRYPTO,
        "EURUSD": AssetClass.FOREX,
    }
    assert m.assets["BTCUSDT"].name == "Bitcoin" and m.assets["BTCUSDT"].aliases == ("BTC",)
    assert m.labels == LabelSettings(horizon=2)
    assert m.oracle.df == 4.0 + (5.0 - 4.0) * 2 and m.oracle.exact is False
    assert m.planted_effects == PlantedEffects()
    assert sum(m.counts.bars.values()) > 0 and set(m.oracle_dacc) == set(m.assets)


def test_load_then_save_gives_the_same_bytes(folder: Path, tmp_path: Path) -> None:
    SimManifest.load(folder).save(tmp_path)
    assert (tmp_path / MANIFEST_FILE).read_bytes() == (folder / MANIFEST_FILE).read_bytes()


def test_integers_stay_integers_on_re_save(folder: Path, tmp_path: Path) -> None:
    raw = _raw(folder)
    raw["news_per_day"] = 16  # written by a config that passed an int
    m = SimManifest.load(_write(tmp_path, raw))
    assert m.to_dict() == raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("oracle_dacc"), "field 'oracle_dacc' is missing"),
        (lambda r: r["oracle"].pop("df"), "field 'oracle.df' is missing"),
        (lambda r: r.update(extra=1), r"unknown field\(s\) \['extra'\]"),
        (lambda r: r.update(seed="7"), "field 'seed' = '7': must be an integer"),
        (lambda r: r.update(days=True), "field 'days' = True: must be an integer"),
        (lambda r: r["oracle"].update(df=None), "field 'oracle.df' = None: must be a number"),
        (lambda r: r["symbols"].update(AAPL="bonds"), "field 'symbols.AAPL' = 'bonds'"),
        (lambda r: r["assets"].pop("AAPL"), "field 'assets.AAPL' is missing"),
        (lambda r: r["assets"]["AAPL"].update(aliases="x"), "'assets.AAPL.aliases' = 'x'"),
        (lambda r: r.update(start="2025-01-06"), "field 'start' = '2025-01-06': must be a UTC"),
        (lambda r: r.update(horizon=1), "field 'horizon' = 1: must equal labels.horizon"),
        (lambda r: r["labels"].update(horizon=0), "field 'labels.horizon' = 0"),
        (lambda r: r["planted_effects"].pop("z_cap"), "'planted_effects.z_cap' is missing"),
        (lambda r: r["counts"]["bars"].update(AAPL=1.5), "'counts.bars.AAPL' = 1.5"),
        (lambda r: r.update(regime_levels=[0.7, "x"]), r"'regime_levels\[1\]' = 'x'"),
    ],
)
def test_a_bad_field_is_named(folder: Path, tmp_path: Path, change, message: str) -> None:
    raw = _raw(folder)
    change(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(InputError, match=message) as err:
        SimManifest.load(path)
    assert str(path / MANIFEST_FILE) in str(err.value)


def test_not_json_and_no_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        SimManifest.load(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(InputError, match="not a JSON manifest"):
        SimManifest.load(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("[]")
    with pytest.raises(InputError, match="manifest must be a JSON object"):
        SimManifest.load(tmp_path)
