"""Issue 14's "running across nodes", on one loopback cluster: head + 2 worker nodes
(``ray.cluster_utils.Cluster``) whose workers alone declare the ``trainer`` and ``feed``
resources, so trials and feed actors run on workers, never on the head.

1. A feed actor on a worker node writes its bars over ILP/HTTP (``--store questdb://...``) to
   a loopback server speaking QuestDB's HTTP API (tests/unit/store/questdb_fake.py); the ILP
   lines received are exactly the replayed bars.
2. A sweep survives losing a node: every trial asks for one ``trainer`` (one per worker), so
   the two trials run on different nodes. A Tune callback removes the node of the first trial
   to report its second epoch (its first checkpoint is saved by then). The interrupted trial
   must restart from its last checkpoint (its epoch and iteration counters go on, not back to
   1) on the surviving worker, and the sweep must end with the scores and best configuration
   of an uninterrupted run of the same trials (``run_fold`` in-process, same seeds; resumed
   training is exact on CPU). This test removes a node: it runs last in the module.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

ray = pytest.importorskip("ray")

from ray import tune  # noqa: E402
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: E402

from app.actors.feed_actor import FEED_ACTOR_OPTIONS, BarCloseLog, FeedActor, FeedConfig  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.live.replay import load_replay  # noqa: E402
from app.live.window_spec import WindowSpec  # noqa: E402
from app.sim.config import SimConfig  # noqa: E402
from app.sim.files import write_simulation  # noqa: E402
from app.sim.market import SimulatedMarket  # noqa: E402
from app.tuning.search_space import config_key  # noqa: E402
from app.tuning.sweep import SweepConfig, load_sweep_data, run_sweep  # noqa: E402
from app.tuning.sweep_trial import FoldMetrics, trial_inputs  # noqa: E402
from app.tuning.walkforward import run_fold  # noqa: E402
from tests.support.ray_cluster import loopback_cluster  # noqa: E402
from tests.unit.live.live_builders import sim_folder, small_spec  # noqa: E402
from tests.unit.store.questdb_fake import FakeQuestDB, parse_ilp  # noqa: E402

EPOCHS = 4  # the node goes at epoch 2: two epochs and the test scoring still to run
TRAINER = {"trainer": 1.0}
WORKER_RESOURCES = {**TRAINER, "feed": 1.0}


@pytest.fixture(scope="module")
def cluster():
    with loopback_cluster(WORKER_RESOURCES) as (c, workers):
        yield c, workers


@pytest.mark.slow
def test_feed_actor_on_a_worker_node_writes_its_bars_over_ilp(cluster, tmp_path):
    c, workers = cluster
    sim = sim_folder(tmp_path)
    window = WindowSpec.for_spec(small_spec(), lookback=6)
    sink = (
        ray.remote(BarCloseLog)
        .options(num_cpus=0, scheduling_strategy=_on_node(c.head_node.node_id))
        .remote()
    )
    with FakeQuestDB() as questdb:
        port = questdb.url.rsplit(":", 1)[1]
        config = FeedConfig(
            asset_class="crypto",
            replay=str(sim),
            checkpoint_dir=str(tmp_path / "checkpoints"),
            store_url=f"questdb://127.0.0.1:{port}?visible_timeout=10",
            store_every=64,
            score_news=False,
        )
        feed = (
            ray.remote(FeedActor)
            .options(**FEED_ACTOR_OPTIONS, num_cpus=0, resources={"feed": 1})
            .remote(config, window, None, sink)
        )
        assert ray.get(feed.node_id.remote(), timeout=120) in {w.node_id for w in workers}
        stats = ray.get(feed.run.remote(), timeout=120)
        ray.kill(feed, no_restart=True)
        lines = [line for body in questdb.writes for line in parse_ilp(body.decode())]

    data = load_replay(sim, "crypto")
    want = pd.concat([data.bars[s].assign(symbol=s) for s in data.symbols("crypto")])
    got = pd.DataFrame(
        [{"symbol": tags["symbol"], "ts": ts, **fields} for table, tags, fields, ts in lines]
    )
    assert {table for table, *_ in lines} == {"bars"}
    assert len(questdb.writes) > 1  # batches of store_every bars, each its own ILP request
    cols = ["symbol", "ts", "open", "high", "low", "close", "volume"]
    want = want.assign(ts=want["ts"].astype("datetime64[ns, UTC]").astype("int64"))[cols]
    pd.testing.assert_frame_equal(
        got[cols].sort_values(["symbol", "ts"], ignore_index=True),
        want.sort_values(["symbol", "ts"], ignore_index=True),
        check_dtype=False,
    )
    assert stats["starts"] == 1 and not got.duplicated(["symbol", "ts"]).any()


def _on_node(node_id: str) -> NodeAffinitySchedulingStrategy:
    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


class Recorder(tune.Callback):
    """Every result as (trial, epoch, iteration, since restore, node); optionally kills the
    process and removes the node of the first trial to report ``kill_at_epoch`` (no
    replacement: the other worker takes the trial over when its own trial ends; starting a node
    here takes 20-60 s when loaded)."""

    def __init__(self, cluster: Any = None, workers: list[Any] | None = None, kill_at_epoch=0):
        self.cluster, self.workers, self.kill_at_epoch = cluster, workers or [], kill_at_epoch
        self.rows: list[dict[str, Any]] = []
        self.killed: dict[str, Any] = {}
        self.recovered: list[str] = []

    def __getstate__(self) -> dict[str, Any]:  # Tune saves its callbacks; a Cluster won't pickle
        return {k: v for k, v in self.__dict__.items() if k not in ("cluster", "workers")}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = {
            "trial": trial.trial_id,
            "epoch": result.get("epoch"),
            "iteration": result["training_iteration"],
            "since_restore": result["iterations_since_restore"],
            "node": result.get("node_id"),
            "after_kill": bool(self.killed),
            "done": result.get("done") == 1.0,
        }
        self.rows.append(row)
        if self.kill_at_epoch and not self.killed and row["epoch"] == self.kill_at_epoch:
            [victim] = [w for w in self.workers if w.node_id == row["node"]]
            self.killed = dict(row)
            # the trial's process first: a removed loopback raylet's workers can live on for a
            # few heartbeats, long enough for a fast machine to finish the whole trial there
            os.kill(result["pid"], signal.SIGKILL)
            self.cluster.remove_node(victim, allow_graceful=False)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.recovered.append(trial.trial_id)


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sim")
    write_simulation(SimulatedMarket(SimConfig.for_symbols(["BTCUSDT"], days=5)).run(), folder)
    return folder


def _sweep(sim: Path, out: Path) -> SweepConfig:
    return SweepConfig(
        data=[str(sim)],
        news=False,
        folds=2,
        fold_indices=[1],
        max_epochs=EPOCHS,
        max_windows_per_epoch=500,
        asha_grace_period=EPOCHS + 2,  # no early stops: both runs train every epoch
        max_concurrent=2,
        trial_resources=TRAINER,
        max_failures=2,
        verbose=0,
        out=str(out),
        # no skip path: both trials would keep their identical logistic-regression start on
        # this tiny set (a tie); the test is about resuming, not about the model
        search={"lookback": [12], "d_model": [8, 16], "n_layers": [1], "skip": [False]},
    )


def _uninterrupted(cfg: SweepConfig, settings) -> pd.DataFrame:
    """Every trial of ``cfg`` run in this process by the code a trial runs, start to end."""
    shared = load_sweep_data(cfg, settings)
    rows, threads = [], torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    try:
        for d_model in cfg.search["d_model"]:
            conf = {"lookback": 12, "d_model": d_model, "n_layers": 1, "skip": False, "fold": 1}
            windows, fold, grid, wf = trial_inputs(
                conf, shared.series, cfg, settings, shared.data.asset_class
            )
            outcome = run_fold(
                windows,
                fold,
                grid,
                wf,
                shared.data.oracle,
                settings.labels.model_dump(),
                shared.feature_spec.to_dict(),
            )
            m = FoldMetrics.from_outcome(outcome)
            rows.append({"config_key": config_key(conf), **m.result_columns()})
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(rows).sort_values("config_key", ignore_index=True)


@pytest.mark.slow
@pytest.mark.timeout(360)
def test_sweep_loses_a_node_and_ends_as_an_uninterrupted_run(cluster, sim, tmp_path):
    c, workers = cluster
    settings = load_settings()
    cfg = _sweep(sim, tmp_path / "sweep")
    reference = _uninterrupted(cfg, settings)
    hurt = Recorder(c, workers, kill_at_epoch=2)
    report = run_sweep(cfg, settings, callbacks=[hurt])

    # the two trials ran on the two worker nodes (never on the head)
    killed = hurt.killed
    assert killed, "the callback never saw epoch 2"
    assert {r["node"] for r in hurt.rows} == {w.node_id for w in workers}

    # the node went away mid-trial; the trial came back once, elsewhere, from a checkpoint
    assert hurt.recovered == [killed["trial"]]
    mine = [r for r in hurt.rows if r["trial"] == killed["trial"]]
    before = [r for r in mine if not r["after_kill"]]
    after = [r for r in mine if r["after_kill"]]
    first = next(r for r in after if r["since_restore"] == 1)
    [survivor] = [w.node_id for w in workers if w.node_id != killed["node"]]
    assert first["node"] == survivor
    assert {r["node"] for r in hurt.rows if r["trial"] != killed["trial"]} == {survivor}
    # not from scratch: it resumes after the newest checkpoint. On loopback the removed node's
    # trainer can outlive its raylet for a few heartbeats and checkpoint further epochs (the
    # nodes share one disk), so the resumed epoch may be past ``before``; the identical scores
    # below show that no epoch was skipped or trained twice
    assert before and first["epoch"] > 1
    assert first["iteration"] == first["epoch"]  # Tune's counter came back with the checkpoint
    assert after[-1]["done"] and after[-1]["iteration"] == EPOCHS + 1

    # the same scores and winner as the uninterrupted run
    assert report["trials_finished"] == 2
    results = pd.read_csv(tmp_path / "sweep" / "results.csv").sort_values(
        "config_key", ignore_index=True
    )
    cols = ["config_key", "val_dacc", "test_dacc", "test_log_loss", "n_test"]
    pd.testing.assert_frame_equal(results[cols], reference[cols], check_dtype=False)
    best = reference.sort_values("val_dacc", ascending=False)["config_key"].iloc[0]
    assert reference["val_dacc"].nunique() == 2  # a clear winner, no tie broken by order
    assert report["best_config_key"] == best
