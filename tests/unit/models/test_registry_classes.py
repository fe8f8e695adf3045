"""Per-asset-class promoted pointers: each class keeps its own served version, ``PROMOTED`` stays
what one-class (and older) registries read, and an old registry keeps its promotion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import InputError
from app.models import registry
from app.types import AssetClass


def fake_version(root: Path, name: str, asset_class: str | None) -> str:
    """A complete price version folder (the files the registry requires), no weights."""
    folder = root / name
    folder.mkdir(parents=True)
    for f in registry._PRICE_FILES:
        (folder / f).write_text("{}")
    spec = {"asset_class": asset_class} if asset_class else {}
    (folder / "feature_spec.json").write_text(json.dumps(spec))
    (folder / "model.json").write_text(json.dumps({"kind": "lstm", "created_at": name}))
    (folder / "data.json").write_text(json.dumps({"symbols": ["X"]}))
    return name


def test_each_class_keeps_its_own_promoted_version(tmp_path: Path) -> None:
    c1 = fake_version(tmp_path, "v1-crypto", "crypto")
    f2 = fake_version(tmp_path, "v2-forex", "forex")
    c3 = fake_version(tmp_path, "v3-crypto", "crypto")
    assert registry.promote(tmp_path, c1) == ""
    assert registry.promoted_version(tmp_path, asset_class="crypto") == c1
    assert registry.promoted_version(tmp_path, asset_class=AssetClass.FOREX) is None
    assert registry.promote(tmp_path, f2) == ""  # the previous one of its own class
    assert registry.promoted_version(tmp_path) == f2  # the last promotion of any class
    assert registry.promoted_versions(tmp_path) == {AssetClass.CRYPTO: c1, AssetClass.FOREX: f2}
    assert registry.promote(tmp_path, c3) == c1
    assert registry.promoted_versions(tmp_path) == {AssetClass.CRYPTO: c3, AssetClass.FOREX: f2}
    listed = {v.version: v.promoted for v in registry.list_versions(tmp_path)}
    assert listed == {c1: False, f2: True, c3: True}
    assert registry.version_asset_class(tmp_path, f2) is AssetClass.FOREX


def test_a_registry_from_before_the_class_pointers_keeps_its_promotion(tmp_path: Path) -> None:
    c1 = fake_version(tmp_path, "v1-crypto", "crypto")
    (tmp_path / registry.PROMOTED_FILE).write_text(c1 + "\n")  # the only pointer it had
    assert registry.promoted_version(tmp_path, asset_class="crypto") == c1
    assert registry.promoted_version(tmp_path, asset_class="stocks") is None
    s2 = fake_version(tmp_path, "v2-stocks", "stocks")
    registry.promote(tmp_path, s2)
    assert registry.promoted_versions(tmp_path) == {AssetClass.CRYPTO: c1, AssetClass.STOCKS: s2}


def test_a_version_without_a_class_is_served_through_promoted_only(tmp_path: Path) -> None:
    old = fake_version(tmp_path, "v0-old", None)
    registry.promote(tmp_path, old)
    assert registry.promoted_version(tmp_path) == old
    assert registry.promoted_versions(tmp_path) == {}
    assert [v.promoted for v in registry.list_versions(tmp_path)] == [True]


def test_a_pointer_to_a_deleted_version_serves_no_class(tmp_path: Path) -> None:
    (tmp_path / registry.PROMOTED_FILE).write_text("v9-gone\n")  # its folder was removed
    assert registry.promoted_version(tmp_path) == "v9-gone"
    assert registry.promoted_versions(tmp_path) == {}
    assert registry.list_versions(tmp_path) == []
    registry.promote(tmp_path, fake_version(tmp_path, "v1-crypto", "crypto"))
    assert registry.promoted_versions(tmp_path) == {AssetClass.CRYPTO: "v1-crypto"}


def test_a_bad_class_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="asset_class='bonds'"):
        registry.promoted_version(tmp_path, asset_class="bonds")
    with pytest.raises(InputError, match="kind='sentiment'"):
        registry.promoted_version(tmp_path, "sentiment", asset_class="crypto")
