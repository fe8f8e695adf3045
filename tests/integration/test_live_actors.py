"""Feed actors survive crashes: killed mid-replay, or their node removed, they come back from
their checkpoint and the store; the store ends with every bar exactly once and the feature rows
equal an uninterrupted run's. One loopback ``ray.cluster_utils.Cluster`` for the module (head +
2 worker nodes; the feed actor needs the ``feed`` resource only the workers have)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: E402

from app.actors.feed_actor import BarCloseLog, FeedActor, FeedConfig  # noqa: E402
from app.actors.store_actor import STORE_ACTOR_OPTIONS, StoreActor  # noqa: E402
from app.live.replay import Replay, load_replay  # noqa: E402
from app.live.window_spec import WindowSpec  # noqa: E402
from app.store import open_store  # noqa: E402
from app.types import to_ns  # noqa: E402
from app.worker_serve import feed_actor_options  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402
from tests.unit.live.live_builders import sim_folder, small_spec  # noqa: E402

SPEED = 150.0  # bars per second per ticker: a 2-day replay (576 steps) takes ~4 s


@pytest.fixture(scope="module")
def cluster():
    if os.environ.get("RAY_TMPDIR"):
        (Path(os.environ["RAY_TMPDIR"]) / "ray").mkdir(parents=True, exist_ok=True)
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "resources": {"head": 1},
            "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3},
        },
    )
    workers = [c.add_node(num_cpus=1, resources={"feed": 1}) for _ in range(2)]
    ray.init(
        address=c.address,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}},
    )
    yield c, workers
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return sim_folder(tmp_path_factory.mktemp("sim"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sim):
    """Rows of an uninterrupted in-process run (no Ray): (ts_ns, symbol) -> row."""
    from app.live.feed import FeedWorker

    window = WindowSpec.for_spec(small_spec(), lookback=6)
    data = load_replay(sim, "crypto")
    store = open_store(f"duckdb:///{tmp_path_factory.mktemp('ref') / 'ref.db'}")
    worker = FeedWorker(
        "crypto", data.symbols("crypto"), window, store, keep_rows=True, store_every=64
    )
    for item in Replay(data, "crypto").items():
        worker.on_item(item)
    rows = {(ts, s): r for s in worker.rows for ts, r in worker.rows[s]}
    return window, data, rows


def _on_head(node_id: str) -> NodeAffinitySchedulingStrategy:
    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


def _start(tmp_path: Path, sim: Path, window: WindowSpec, head_id: str):
    store = (
        ray.remote(StoreActor)
        .options(**STORE_ACTOR_OPTIONS, num_cpus=0, scheduling_strategy=_on_head(head_id))
        .remote(f"duckdb:///{tmp_path / 'live.db'}")
    )
    sink = (
        ray.remote(BarCloseLog).options(num_cpus=0, scheduling_strategy=_on_head(head_id)).remote()
    )
    config = FeedConfig(
        asset_class="crypto",
        replay=str(sim),
        checkpoint_dir=str(tmp_path / "checkpoints"),
        checkpoint_every=100,
        store_every=8,
        speed=SPEED,
        score_news=False,
    )
    feed = (
        ray.remote(FeedActor)
        .options(**feed_actor_options("feed"))  # the options of `live --feed-resource feed`
        .remote(config, window, store, sink)
    )
    return store, sink, feed


def _wait_for_bars(store, at_least: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while ray.get(store.count.remote()) < at_least:
        assert time.monotonic() < deadline, "the feed stored too few bars in time"
        time.sleep(0.2)


def _check(store, sink, data, rows, stats) -> None:
    n_bars = sum(len(data.bars[s]) for s in data.symbols("crypto"))
    stored = ray.get(store.read.remote("bars"))
    assert len(stored) == n_bars  # every bar exactly once: no gap, no duplicate
    assert not stored.duplicated(["symbol", "ts"]).any()
    assert stats["starts"] == 2 and stats["restored_bars"] >= 0
    closes = ray.get(sink.all.remote())
    bar_ts = data.bars["BTCUSDT"]["ts"].astype("datetime64[ns, UTC]").astype("int64")
    assert {to_ns(c.ts) for c in closes} == set(bar_ts.tolist())
    compared = 0
    for close in closes:
        for symbol, window in close.windows.items():
            want = rows[(to_ns(close.ts), symbol)]
            np.testing.assert_allclose(window[-1], want, rtol=1e-9, atol=1e-9)
            compared += 1
    assert compared > 900


def test_killed_feed_actor_restarts_and_loses_nothing(cluster, sim, reference, tmp_path):
    c, _ = cluster
    window, data, rows = reference
    head_id = c.head_node.node_id
    store, sink, feed = _start(tmp_path, sim, window, head_id)
    run = feed.run.remote()
    _wait_for_bars(store, 400)
    ray.kill(feed, no_restart=False)
    stats = ray.get(run, timeout=90)  # the interrupted run is retried on the new process
    _check(store, sink, data, rows, stats)
    ray.kill(feed, no_restart=True)


def test_feed_actor_moves_to_another_node_when_its_node_dies(cluster, sim, reference, tmp_path):
    c, workers = cluster
    window, data, rows = reference
    store, sink, feed = _start(tmp_path, sim, window, c.head_node.node_id)
    first = ray.get(feed.node_id.remote())
    run = feed.run.remote()
    _wait_for_bars(store, 400)
    [victim] = [w for w in workers if w.node_id == first]
    c.remove_node(victim)
    stats = ray.get(run, timeout=90)
    assert ray.get(feed.node_id.remote()) != first
    _check(store, sink, data, rows, stats)
    ray.kill(feed, no_restart=True)
