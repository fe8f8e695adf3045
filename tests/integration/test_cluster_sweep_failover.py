"""A sweep across the nodes of a loopback cluster survives losing one mid-sweep.

Head + 2 worker nodes (``ray.cluster_utils.Cluster``); every trial asks for the ``trainer``
resource only workers declare, one per worker, so the two trials run on different nodes. A
Tune callback removes the node of the first trial to report its second epoch (its first
checkpoint is saved by then). The interrupted trial must restart from its last checkpoint (its
epoch and iteration counters go on, not back to 1) on the surviving worker, and the sweep must
end with the scores and best configuration of an uninterrupted run of the same trials
(``run_fold`` in-process, same seeds; resumed training is exact on CPU).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

ray = pytest.importorskip("ray")

from ray import tune  # noqa: E402

from app.config import load_settings  # noqa: E402
from app.sim.config import SimConfig  # noqa: E402
from app.sim.files import write_simulation  # noqa: E402
from app.sim.market import SimulatedMarket  # noqa: E402
from app.tuning.search_space import config_key  # noqa: E402
from app.tuning.sweep import SweepConfig, load_sweep_data, run_sweep  # noqa: E402
from app.tuning.sweep_trial import FoldMetrics, trial_inputs  # noqa: E402
from app.tuning.walkforward import run_fold  # noqa: E402
from tests.support.ray_cluster import loopback_cluster  # noqa: E402

EPOCHS = 4
TRAINER = {"trainer": 1.0}


class Recorder(tune.Callback):
    """Every result as (trial, epoch, iteration, since restore, node); optionally removes the
    node of the first trial to report ``kill_at_epoch`` (no replacement: the other worker takes
    the trial over when its own trial ends; starting a node here takes 20-60 s when loaded)."""

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
            self.killed = {**row, "t": time.monotonic()}
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
        max_windows_per_epoch=800,
        asha_grace_period=EPOCHS + 2,  # no early stops: both runs train every epoch
        max_concurrent=2,
        trial_resources=TRAINER,
        max_failures=2,
        verbose=0,
        out=str(out),
        search={"lookback": [12], "d_model": [8, 16], "n_layers": [1]},
    )


def _uninterrupted(cfg: SweepConfig, settings) -> pd.DataFrame:
    """Every trial of ``cfg`` run in this process by the code a trial runs, start to end."""
    shared = load_sweep_data(cfg, settings)
    rows, threads = [], torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    try:
        for d_model in cfg.search["d_model"]:
            conf = {"lookback": 12, "d_model": d_model, "n_layers": 1, "fold": 1}
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
@pytest.mark.timeout(240)
def test_sweep_loses_a_node_and_ends_as_an_uninterrupted_run(sim, tmp_path):
    settings = load_settings()
    cfg = _sweep(sim, tmp_path / "sweep")
    reference = _uninterrupted(cfg, settings)
    with loopback_cluster(TRAINER) as (cluster, workers):
        hurt = Recorder(cluster, workers, kill_at_epoch=2)
        report = run_sweep(cfg, settings, callbacks=[hurt])

    # both trials ran at once, one on each worker node (never on the head)
    killed = hurt.killed
    assert killed, "the callback never saw epoch 2"
    assert {r["node"] for r in hurt.rows if not r["after_kill"]} == {w.node_id for w in workers}

    # the node went away mid-trial; the trial came back once, elsewhere, from a checkpoint
    assert hurt.recovered == [killed["trial"]]
    mine = [r for r in hurt.rows if r["trial"] == killed["trial"]]
    before = [r for r in mine if not r["after_kill"]]
    after = [r for r in mine if r["after_kill"]]
    first = next(r for r in after if r["since_restore"] == 1)
    [survivor] = [w.node_id for w in workers if w.node_id != killed["node"]]
    assert first["node"] == survivor
    assert 1 < first["epoch"] <= before[-1]["epoch"] + 1  # not from scratch, no epoch skipped
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
