"""The final fit through Ray Train's TorchTrainer on a local Ray: one worker reproduces
``fit_model`` bit for bit; two data-parallel (DDP, gloo) workers train a model that finds a
planted AR(1) effect and calibrates like the single-process one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.labels import dacc
from app.models.calibration import softmax
from app.models.train import ModelSpec, TrainConfig, fit_model
from app.tuning.final_fit import fit_with_torch_trainer
from app.tuning.walkforward import bundle_logits
from tests.unit.tuning.test_tuning_walkforward import windows_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def local_ray(ray_serve):
    """The session's local Ray (2 CPUs; Serve's controller and proxy hold none): a Ray of
    this module's own cost ~10 s to start and stop. The file name sorts it after the loopback
    Cluster tests, which need no Ray connected (tests/support/ray_cluster.py)."""
    return ray_serve


@pytest.fixture(scope="module")
def momentum():
    rng = np.random.default_rng(3)
    n = 4000
    eps = rng.normal(0, 1e-3, n)
    ret = np.zeros(n)
    for t in range(1, n):  # AR(1) returns: the next return leans on the last one
        ret[t] = 0.5 * ret[t - 1] + eps[t]
    windows = windows_for(100 * np.exp(np.cumsum(ret)))
    ends = windows.labeled_ends()
    return windows, ends[:2400], ends[2460:3100], ends[3160:]


SPEC = ModelSpec(lookback=10, d_model=16, n_layers=1, n_heads=2)
CONFIG = TrainConfig(max_epochs=3, batch_size=128, lr=3e-3, patience=3, seed=5)


def test_one_worker_reproduces_fit_model_exactly(local_ray, momentum, tmp_path):
    windows, train, val, _ = momentum
    torch.set_num_threads(1)
    local = fit_model(windows, train, val, SPEC, CONFIG, "cpu")
    remote = fit_with_torch_trainer(
        windows, train, val, SPEC, CONFIG, num_workers=1, storage_path=tmp_path
    )
    a, b = local.bundle.model.state_dict(), remote.bundle.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert remote.bundle.temperature == local.bundle.temperature
    assert remote.best_epoch == local.best_epoch and remote.epochs_run == local.epochs_run


def test_two_ddp_workers_learn_the_planted_effect(local_ray, momentum, tmp_path):
    windows, train, val, test = momentum
    result = fit_with_torch_trainer(
        windows, train, val, SPEC, CONFIG, num_workers=2, storage_path=tmp_path
    )
    bundle = result.bundle
    probs = softmax(bundle_logits(bundle, windows, test), bundle.temperature)
    assert dacc(probs[:, 0], probs[:, 1], windows.r[test]) > 0.6  # AR(1) at 0.5 is easy
    assert result.epochs_run >= 1 and len(result.history) == result.epochs_run + 1  # + epoch 0
    assert result.history[0]["epoch"] == 0.0  # the skip path's logistic-regression start
    assert result.val_nll_after <= result.val_nll_before + 1e-9  # temperature fits NLL


def test_zero_workers_refused(momentum):
    windows, train, val, _ = momentum
    with pytest.raises(ValueError, match="num_workers=0"):
        fit_with_torch_trainer(windows, train, val, SPEC, CONFIG, num_workers=0)
