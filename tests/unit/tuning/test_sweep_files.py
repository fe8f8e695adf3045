"""Every committed sweep file loads and gives Tune a valid ASHA schedule (configs/sweep_real_*
asked for a grace period longer than the sweep's default budget and failed at start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.tuning.sweep import asha_scheduler
from app.tuning.sweep_config import load_sweep_config

CONFIGS = sorted((Path(__file__).parents[3] / "configs").glob("sweep*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_sweep_file_builds_its_scheduler(path: Path) -> None:
    cfg = load_sweep_config(path)
    scheduler = asha_scheduler(cfg)
    searched = max([cfg.max_epochs, *cfg.search.get("max_epochs", [])])
    assert scheduler._max_t == searched + 2


@pytest.mark.parametrize("path", [p for p in CONFIGS if "real" in p.name], ids=lambda p: p.name)
def test_real_data_sweeps_run_every_trial_to_its_budget(path: Path) -> None:
    """Their figures compare every configuration's full budget: ASHA's first rung must lie past
    the last report of the longest trial (its epochs + the test report)."""
    cfg = load_sweep_config(path)
    longest = max([cfg.max_epochs, *cfg.search.get("max_epochs", [])])
    assert cfg.asha_grace_period > longest + 1
