"""The processes that never run a model do not import torch: each Serve replica and Ray actor
imports its module in a fresh interpreter, and torch costs ~3 s of every such start (several
per live session and per Serve test). Only the Model deployment loads a version, and with it
torch (``app.models.registry.load_version``)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

LIGHT = ("app.serve.deployments", "app.serve.graph", "app.actors.execution", "app.live.session")


def test_risk_execution_and_ingress_modules_leave_torch_unloaded() -> None:
    probe = (
        f"import sys\nfor m in {LIGHT!r}: __import__(m)\n"
        "print(sorted(m for m in ('torch', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", done.stdout
