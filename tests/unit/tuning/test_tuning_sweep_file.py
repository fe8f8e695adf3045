"""The sweep file shipped in configs/ is valid: the README's command starts from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import InputError
from app.tuning.search_space import n_configurations, param_space
from app.tuning.sweep import load_sweep_config
from tests.conftest import REPO_ROOT


def test_shipped_sweep_config_loads_and_builds_a_grid() -> None:
    cfg = load_sweep_config(REPO_ROOT / "configs" / "sweep.toml")
    assert cfg.asset_class is not None and cfg.asset_class.value == "crypto"
    assert n_configurations(cfg.search) == 16
    grid = param_space(cfg.search, [0, 1, 2])
    assert set(grid) == {"lookback", "d_model", "n_layers", "lr", "fold"}


def test_unknown_sweep_keys_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('data = ["x"]\nmax_epoch = 3\n')
    with pytest.raises(InputError, match="max_epoch"):
        load_sweep_config(bad)
