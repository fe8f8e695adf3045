"""A training run resumed from a saved ``TrainState`` ends exactly like the uninterrupted one
(the sweep's trials rely on it when a node is lost mid-trial)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.models.dataset import WindowSet
from app.models.train import ModelSpec, TrainConfig, fit_model
from app.models.train_state import TrainState
from tests.unit.models.test_models_core import make_series

torch.set_num_threads(1)


def _fit(w, *, resume=None, on_state=None, max_windows=0, dropout=0.1):
    train = w.labeled_ends(None, int(w.ts[500]))
    val = w.labeled_ends(int(w.ts[520]), None)
    spec = ModelSpec(lookback=w.lookback, d_model=16, n_layers=1, n_heads=2, dropout=dropout)
    cfg = TrainConfig(
        max_epochs=4, batch_size=64, seed=3, patience=5, max_windows_per_epoch=max_windows
    )
    res = fit_model(w, train, val, spec, cfg, "cpu", resume=resume, on_state=on_state)
    return res, res.bundle.predict_proba(w.gather(val))


@pytest.mark.parametrize("max_windows", [0, 200])  # 200: a random sample each epoch
def test_resumed_training_equals_the_uninterrupted_run(tmp_path, max_windows):
    w = WindowSet([make_series(n=700, signal=2.0)], lookback=8)
    states: list[TrainState] = []
    full, p_full = _fit(w, on_state=states.append, max_windows=max_windows)
    assert [s.epoch for s in states] == [1, 2, 3, 4]
    states[1].save(tmp_path)  # through the file, as a checkpoint travels between nodes
    after: list[TrainState] = []
    resumed, p_resumed = _fit(
        w, resume=TrainState.load(tmp_path), on_state=after.append, max_windows=max_windows
    )
    assert [s.epoch for s in after] == [3, 4]  # continued, not restarted
    np.testing.assert_array_equal(p_full, p_resumed)
    assert [h["val_dacc"] for h in resumed.history] == [h["val_dacc"] for h in full.history]
    assert resumed.best_epoch == full.best_epoch and resumed.epochs_run == 4


def test_a_state_saved_after_the_last_epoch_trains_no_further(tmp_path):
    w = WindowSet([make_series(n=700, signal=2.0)], lookback=8)
    states: list[TrainState] = []
    full, p_full = _fit(w, on_state=states.append)
    again: list[TrainState] = []
    resumed, p_resumed = _fit(w, resume=states[-1], on_state=again.append)
    assert again == [] and resumed.epochs_run == full.epochs_run
    np.testing.assert_array_equal(p_full, p_resumed)


def test_a_missing_state_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_state.pt"):
        TrainState.load(tmp_path)
