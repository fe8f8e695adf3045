"""Test-wide setup: loopback-only Ray, offline Hugging Face, and the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Ray Train v2's controller polls its workers every 2 s (ray.train.v2._internal.constants, one of
# the variables Train propagates from the driver to the controller and workers): a final fit's
# last report waits for a poll and its end for another, ~4 s of every TorchTrainer fit here.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
os.environ.setdefault(
    "NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "numba")
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SHARED_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (read-only). Tests that need it skip cleanly where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def shared_ohlcv_files() -> list[Path | pytest.ParameterSet]:
    """Every <SYMBOL>_5m.csv under ../shared/data, to parametrize a test over.

    Where the folder (or every file in it) is absent, one case that skips with the reason, so
    the run shows the test was not made instead of collecting nothing.
    """
    files = sorted(SHARED_DATA.glob("*/*_5m.csv")) if SHARED_DATA.is_dir() else []
    if files:
        return list(files)
    why = "not found" if not SHARED_DATA.is_dir() else "has no */*_5m.csv"
    skip = pytest.mark.skip(reason=f"shared data {why} at {SHARED_DATA}")
    return [pytest.param(None, marks=skip, id="no-shared-data")]


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter teardown: after a green run, native threads left by Ray, torch
    or Gradio have crashed the process at exit (a segfault that turned 970 passes into make's
    error). The summary is printed by now; the exit code is the session's."""
    if _EXIT_STATUS:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
