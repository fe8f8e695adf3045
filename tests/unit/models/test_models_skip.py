"""The linear skip path, the epoch-0 start, early stopping and the seed ensemble."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from app.models.dataset import FeatureScaler, WindowSet, class_weights
from app.models.ensemble import EnsembleClassifier
from app.models.factory import build_model, model_config_for
from app.models.registry import load_version, save_version
from app.models.skip import apply_linear_init, skip_layer
from app.models.train import ModelSpec, TrainConfig, fit_model, linear_init_for, prior_correction
from app.models.validation import predict_logits
from tests.unit.models.test_models_core import make_series

torch.set_num_threads(1)


def _split(w):
    return w.labeled_ends(None, int(w.ts[1000])), w.labeled_ends(int(w.ts[1020]), None)


@pytest.mark.parametrize("kind", ["transformer", "lstm"])
def test_at_init_the_network_is_logistic_regression_on_the_last_bar(kind):
    w = WindowSet(
        [make_series(n=1400, signal=2.0), make_series(n=1400, symbol="BBB", seed=4)], lookback=8
    )
    train, val = _split(w)
    x = FeatureScaler.fit(w.X[w.covered_rows(train)]).transform(w.X)
    cfg = model_config_for(kind, n_features=4, lookback=8, d_model=16, n_layers=1, n_tickers=2)
    model = build_model(kind, cfg)
    assert skip_layer(model) is not None and cfg["skip"] is True
    assert torch.count_nonzero(model.head.weight) == 0  # the encoder starts silent
    apply_linear_init(model, linear_init_for(w, x, train, TrainConfig()))
    logits = predict_logits(model, w, x, val, torch.device("cpu"))
    logits = logits + prior_correction(class_weights(w.y[train]))
    ref = LogisticRegression(C=0.1, max_iter=300, random_state=0).fit(x[train], w.y[train])
    p_ref = ref.predict_proba(x[val])
    p = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(p / p.sum(1, keepdims=True), p_ref, atol=1e-5)
    # only the decision bar matters at init: earlier bars (and the ticker) change nothing
    xw = torch.from_numpy(w.gather(val[:50], x))
    noisy = xw.clone()
    noisy[:, :-1] += torch.randn_like(noisy[:, :-1])
    model.eval()
    with torch.no_grad():
        a = model(xw, torch.zeros(50, dtype=torch.long))
        b = model(noisy, torch.ones(50, dtype=torch.long))
    torch.testing.assert_close(a, b)


def test_training_starts_from_epoch_zero_and_never_ends_worse_on_validation():
    w = WindowSet([make_series(n=1400, signal=2.0)], lookback=8)
    train, val = _split(w)
    spec = ModelSpec(kind="lstm", lookback=8, d_model=8, n_layers=1)
    res = fit_model(
        w, train, val, spec, TrainConfig(max_epochs=2, batch_size=128, patience=5), "cpu"
    )
    first, rest = res.history[0], res.history[1:]
    assert first["epoch"] == 0 and res.epochs_run == 2 == len(rest)
    best = res.history[res.best_epoch]["val_loss_cal"]
    assert best == min(h["val_loss_cal"] for h in res.history) <= first["val_loss_cal"]
    with pytest.raises(ValueError, match="stop_on='auc'"):
        TrainConfig(stop_on="auc")


def test_seed_ensemble_fits_calibrates_and_round_trips_the_registry(tmp_path):
    w = WindowSet([make_series(n=1400, signal=2.0)], lookback=8)
    train, val = _split(w)
    spec = ModelSpec(kind="lstm", lookback=8, d_model=8, n_layers=1)
    cfg = TrainConfig(max_epochs=1, batch_size=128, ensemble=2)
    res = fit_model(w, train, val, spec, cfg, "cpu")
    model = res.bundle.model
    assert isinstance(model, EnsembleClassifier) and len(model.members) == 2
    assert res.bundle.model_config["ensemble"] == 2 and len(res.member_best_epochs) == 2
    a, b = (m.input_proj.weight.detach() for m in model.members)
    assert not torch.equal(a, b)  # different seeds, different members
    x = w.gather(val)
    version = save_version(tmp_path, res.bundle, metrics={}, data_range={})
    np.testing.assert_array_equal(
        load_version(tmp_path, version).predict_proba(x), res.bundle.predict_proba(x)
    )


def test_a_bundle_saved_before_the_skip_path_still_loads():
    old = {"n_features": 4, "lookback": 8, "d_model": 16, "n_layers": 1, "n_heads": 2}
    for kind, cfg in (("transformer", old), ("lstm", {"n_features": 4, "hidden": 8})):
        model = build_model(kind, cfg)  # no "skip" key: the old architecture
        assert skip_layer(model) is None
        build_model(kind, cfg).load_state_dict(model.state_dict())
