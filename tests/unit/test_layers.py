"""The layer contracts of docs/DESIGN.md, checked with import-linter (config in pyproject.toml).

The second test proves the contracts can fail: the same linter, run on a copy of the package
with one forbidden import added, reports the contract as broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def app_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package and its contracts, where probe modules can be added."""
    if not LINT.exists():
        pytest.skip(f"import-linter not installed at {LINT}")
    root = tmp_path_factory.mktemp("layers")
    for package in ("app", "ui"):
        shutil.copytree(
            ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_repository_keeps_every_contract() -> None:
    if not LINT.exists():
        pytest.skip(f"import-linter not installed at {LINT}")
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("probe", "line", "contract"),
    [
        ("app/risk/_probe.py", "import ray\n", "The core imports no Ray"),
        ("app/store/_probe.py", "import app.cli.main\n", "Layers (DESIGN.md)"),
        ("app/tuning/_probe.py", "def f():\n    import app.sources.http\n", "Tuning takes"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    app_copy: Path, probe: str, line: str, contract: str
) -> None:
    path = app_copy / probe
    path.write_text(line)
    try:
        result = _lint(app_copy)
    finally:
        path.unlink()
    assert result.returncode != 0
    broken = [ln for ln in result.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(ln.startswith(contract) for ln in broken), result.stdout[-3000:]
    assert Path(probe).stem in result.stdout  # the report names the offending module
