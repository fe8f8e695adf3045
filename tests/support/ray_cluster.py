"""A loopback ``ray.cluster_utils.Cluster`` (head + worker nodes on this machine) for tests.

Worker nodes declare ``worker_resources`` that the head lacks, so the tasks and actors that ask
for them land on workers and move when one is removed. Fast failure detection
(``health_check_*``): a removed node's work is rescheduled in seconds, not ~16 s.

One Ray per process: the session's Ray + Serve fixture (tests/integration/conftest.py) must not
be connected yet, as for tests/integration/test_live_actors.py; the modules using this sort
before the Serve tests, and this says so clearly if that ever changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

FAST_HEALTH_CHECKS = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}


@contextmanager
def loopback_cluster(
    worker_resources: dict[str, float], n_workers: int = 2, worker_cpus: int = 1
) -> Iterator[tuple[Any, list[Any]]]:
    """(cluster, worker nodes); the driver is connected to the cluster inside the block."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        pytest.fail(
            "another Ray is connected in this process (the session's Serve fixture?): "
            "loopback Cluster tests must run before it"
        )
    if os.environ.get("RAY_TMPDIR"):
        (Path(os.environ["RAY_TMPDIR"]) / "ray").mkdir(parents=True, exist_ok=True)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "resources": {"head": 1},
            "_system_config": FAST_HEALTH_CHECKS,
        },
    )
    try:
        workers = [
            cluster.add_node(num_cpus=worker_cpus, resources=dict(worker_resources))
            for _ in range(n_workers)
        ]
        ray.init(
            address=cluster.address,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}},
        )
        cluster.wait_for_nodes()
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()
