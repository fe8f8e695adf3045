"""Training loop shared by the CLI, the walk-forward and the Ray Tune trainables.

AdamW, class-weighted cross-entropy, gradient clipping, a skip path started from logistic
regression (app/models/skip.py) and scored as "epoch 0", early stopping on validation log loss
after temperature scaling (or on DACC: ``TrainConfig.stop_on``), fixed seeds (bit-for-bit
deterministic on CPU), CUDA + mixed precision when the device is a GPU, an optional seed
ensemble, and temperature scaling fitted on the validation windows at the end.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from app.models.bundle import ModelBundle
from app.models.calibration import expected_calibration_error, fit_temperature, nll, softmax
from app.models.dataset import FeatureScaler, WindowSet, class_weights, iterate_batches
from app.models.ensemble import EnsembleClassifier
from app.models.factory import build_model, model_config_for
from app.models.skip import LinearInit, apply_linear_init, fit_linear_init, param_groups, skip_layer
from app.models.train_state import TrainState
from app.models.validation import (
    direction_accuracy,
    predict_logits,
    stop_score,
    validation_scores,
)

STOP_ON = ("loss", "dacc")


@dataclass(frozen=True)
class ModelSpec:
    """Architecture choice, in the names the search space uses."""

    kind: str = "transformer"
    lookback: int = 60
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.1
    ticker_embedding: bool = True
    pooling: str = "last"
    skip: bool = True  # the linear last-bar path (app/models/skip.py)


@dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 3
    grad_clip: float = 1.0
    seed: int = 0
    max_windows_per_epoch: int = 0  # 0 = every training window each epoch
    class_weighting: bool = True
    eval_batch_size: int = 2048
    stop_on: str = "loss"  # early stopping on calibrated validation log loss, or "dacc"
    linear_init: bool = True  # fit the skip path by logistic regression before training
    linear_c: float = 0.1  # its inverse L2 strength (the logreg baseline's)
    skip_lr_scale: float = 1.0  # the skip path's learning rate relative to lr (0 = frozen)
    ensemble: int = 1  # > 1: that many seeds (seed, seed+1, ...), logits averaged

    def __post_init__(self) -> None:
        if self.stop_on not in STOP_ON:
            raise ValueError(f"stop_on={self.stop_on!r}: expected one of {STOP_ON}")
        if self.ensemble < 1:
            raise ValueError(f"ensemble={self.ensemble}: must be >= 1")
        if self.skip_lr_scale < 0 or self.linear_c <= 0:
            raise ValueError(
                f"skip_lr_scale={self.skip_lr_scale}, linear_c={self.linear_c}: "
                "need skip_lr_scale >= 0 and linear_c > 0"
            )


@dataclass
class TrainResult:
    bundle: ModelBundle
    best_epoch: int
    epochs_run: int
    val_dacc: float
    val_nll_before: float
    val_nll_after: float
    val_ece_before: float
    val_ece_after: float
    train_seconds: float
    windows_per_second: float
    history: list[dict[str, float]] = field(default_factory=list)
    member_best_epochs: list[int] = field(default_factory=list)  # one per ensemble member

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("bundle")
        d["temperature"] = self.bundle.temperature
        return d


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` = CUDA when present, else CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # legacy global seed, for libraries that still use it
    torch.manual_seed(seed)


def prior_correction(weights: np.ndarray) -> np.ndarray:
    """Logit offsets that undo class weighting: a model trained with loss weights ``w_c``
    estimates probabilities proportional to ``w_c * p(c|x)``, so adding ``-log w_c`` to its
    logits restores the data's class prior before temperature scaling."""
    return -np.log(np.asarray(weights, dtype=np.float64))


def linear_init_for(
    windows: WindowSet, X: np.ndarray, train_ends: np.ndarray, config: TrainConfig
) -> LinearInit:
    """The skip path's starting weights from the training windows' (scaled) last bars."""
    weights = class_weights(windows.y[train_ends]) if config.class_weighting else np.ones(3)
    return fit_linear_init(
        X[train_ends], windows.y[train_ends], weights, c=config.linear_c, seed=config.seed
    )


def train_classifier(
    model: nn.Module,
    windows: WindowSet,
    X: np.ndarray,
    train_ends: np.ndarray,
    val_ends: np.ndarray,
    config: TrainConfig,
    device: torch.device,
    on_epoch: Callable[[dict[str, float], nn.Module], None] | None = None,
    shard: tuple[int, int] = (0, 1),
    linear_init: LinearInit | None = None,
    *,
    resume: TrainState | None = None,
    on_state: Callable[[TrainState], None] | None = None,
) -> tuple[nn.Module, list[dict[str, float]], int, float]:
    """Train in place; return (best model, history, best epoch, training windows/s).

    A model with a skip path starts from ``linear_init`` (fitted here when None and
    ``config.linear_init``); ``history[0]`` is that starting point ("epoch 0", best epoch 0
    when no epoch beats it on validation).
    ``shard = (rank, world)`` is for data-parallel workers (app/tuning/final_fit.py): every
    worker draws the same epoch sample and trains on its ``rank::world`` share of it, DDP
    averages the gradients, and the stop decision uses rank 0's validation scores.
    ``on_state`` gets the loop's state after every epoch; ``resume`` continues from one, and
    then ends exactly as the uninterrupted run would have (same samples, same weights)."""
    if train_ends.size == 0 or val_ends.size == 0:
        raise ValueError(
            f"train_classifier: {train_ends.size} training and {val_ends.size} "
            "validation windows; both must be > 0"
        )
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    model.to(device)
    if config.linear_init and skip_layer(model) is not None:
        apply_linear_init(model, linear_init or linear_init_for(windows, X, train_ends, config))
    groups = param_groups(model, config.lr, config.skip_lr_scale)
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    weights = class_weights(windows.y[train_ends]) if config.class_weighting else np.ones(3)
    bias = prior_correction(weights)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32, device=device))
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    rank, world = shard
    row = {"epoch": 0.0, "train_loss": float("nan")}
    row.update(
        validation_scores(model, windows, X, val_ends, bias, device, world, config.eval_batch_size)
    )
    history: list[dict[str, float]] = [row]
    best = stop_score(row, config.stop_on)
    best_state, best_epoch, stale = copy.deepcopy(model.state_dict()), 0, 0
    seen, busy, first = 0, 0.0, 1
    if resume is not None:
        model.load_state_dict(resume.model)
        opt.load_state_dict(resume.optimizer)
        scaler.load_state_dict(resume.grad_scaler)
        rng.bit_generator.state = resume.rng
        torch.set_rng_state(resume.torch_rng)
        best, best_state, best_epoch, stale = (
            resume.best,
            resume.best_state,
            resume.best_epoch,
            resume.stale,
        )
        history, seen, busy = list(resume.history), resume.seen, resume.busy
        first = (
            config.max_epochs + 1
            if resume.stopped(config.patience, config.max_epochs)
            else resume.epoch + 1
        )
    for epoch in range(first, config.max_epochs + 1):
        ends = train_ends
        if 0 < config.max_windows_per_epoch < ends.size:
            ends = np.sort(rng.choice(ends, config.max_windows_per_epoch, replace=False))
        if world > 1:  # equal shards: every worker runs the same number of DDP steps
            ends = ends[: ends.size - ends.size % world][rank::world]
        model.train()
        t0, total, count = time.perf_counter(), 0.0, 0
        for x, y, tk in iterate_batches(windows, X, ends, config.batch_size, shuffle=True, rng=rng):
            x, y, tk = x.to(device), y.to(device), tk.to(device)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type="cuda", enabled=use_amp):
                loss = loss_fn(model(x, tk), y)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach()) * y.numel()
            count += y.numel()
        busy += time.perf_counter() - t0
        seen += count
        row = {"epoch": float(epoch), "train_loss": total / max(count, 1)}
        row.update(
            validation_scores(
                model, windows, X, val_ends, bias, device, world, config.eval_batch_size
            )
        )
        history.append(row)
        if on_epoch is not None:
            on_epoch(row, model)
        score = stop_score(row, config.stop_on)
        if score > best:
            best, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if on_state is not None:
            on_state(
                TrainState(
                    epoch=epoch,
                    model=copy.deepcopy(model.state_dict()),
                    optimizer=copy.deepcopy(opt.state_dict()),
                    grad_scaler=scaler.state_dict(),
                    rng=rng.bit_generator.state,
                    torch_rng=torch.get_rng_state(),
                    best=best,
                    best_state=best_state,
                    best_epoch=best_epoch,
                    stale=stale,
                    history=list(history),
                    seen=seen,
                    busy=busy,
                )
            )
        if stale >= config.patience:
            break
    model.load_state_dict(best_state)
    return model, history, best_epoch, seen / busy if busy > 0 else 0.0


@dataclass
class TrainedModel:
    """A trained network with what fitted it, before calibration (``finish_training``)."""

    model: nn.Module
    model_config: Any
    scaler: FeatureScaler
    history: list[dict[str, float]]
    best_epoch: int
    windows_per_second: float
    member_best_epochs: list[int] = field(default_factory=list)


def prepare_training(
    windows: WindowSet, train_ends: np.ndarray, spec: ModelSpec
) -> tuple[FeatureScaler, np.ndarray, Any]:
    """(scaler fitted on the training rows only, scaled matrix, model config) for ``spec``."""
    if spec.lookback != windows.lookback:
        raise ValueError(
            f"spec.lookback={spec.lookback} differs from windows.lookback={windows.lookback}"
        )
    scaler = FeatureScaler.fit(windows.X[windows.covered_rows(train_ends)])
    n_tickers = len(windows.series) if spec.ticker_embedding and len(windows.series) > 1 else 0
    model_config = model_config_for(
        spec.kind,
        n_features=windows.n_features,
        lookback=spec.lookback,
        d_model=spec.d_model,
        n_layers=spec.n_layers,
        n_heads=spec.n_heads,
        dropout=spec.dropout,
        n_tickers=n_tickers,
        pooling=spec.pooling,
        skip=spec.skip,
    )
    return scaler, scaler.transform(windows.X), model_config


def fit_model(
    windows: WindowSet,
    train_ends: np.ndarray,
    val_ends: np.ndarray,
    spec: ModelSpec,
    config: TrainConfig,
    device: torch.device | str = "auto",
    *,
    label_settings: dict[str, Any] | None = None,
    feature_spec: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, float], nn.Module], None] | None = None,
    resume: TrainState | None = None,
    on_state: Callable[[TrainState], None] | None = None,
) -> TrainResult:
    """Fit scaler (training rows only), model and temperature (validation); return a bundle.
    ``resume``/``on_state``: continue from / receive the loop's state (``train_classifier``)."""
    dev = resolve_device(device) if isinstance(device, str) else device
    t0 = time.perf_counter()
    scaler, X, model_config = prepare_training(windows, train_ends, spec)
    if config.ensemble > 1 and (resume is not None or on_state is not None):
        raise ValueError(
            f"TrainConfig.ensemble={config.ensemble}: a resumable (checkpointed) fit trains one "
            "model; use ensemble=1 in sweeps"
        )
    init = linear_init_for(windows, X, train_ends, config) if config.linear_init else None
    members, history, best_epochs, rates = [], [], [], []
    for k in range(config.ensemble):  # member k trains with seed + k; the rest is shared
        member_config = replace(config, seed=config.seed + k)
        seed_everything(member_config.seed)
        model = build_model(spec.kind, model_config)
        model, rows, best_epoch, wps = train_classifier(
            model,
            windows,
            X,
            train_ends,
            val_ends,
            member_config,
            dev,
            on_epoch if k == 0 else None,
            linear_init=init,
            resume=resume,
            on_state=on_state,
        )
        members.append(model)
        history += [{**row, "member": float(k)} if config.ensemble > 1 else row for row in rows]
        best_epochs.append(best_epoch)
        rates.append(wps)
    if config.ensemble > 1:
        model = EnsembleClassifier(members)
        model_config = {**model_config, "ensemble": config.ensemble}
    wps = float(np.mean(rates))
    best_epoch = best_epochs[0]
    return finish_training(
        TrainedModel(model, model_config, scaler, history, best_epoch, wps, best_epochs),
        windows,
        train_ends,
        val_ends,
        spec,
        config,
        dev,
        label_settings=label_settings,
        feature_spec=feature_spec,
        started=t0,
    )


def finish_training(
    trained: TrainedModel,
    windows: WindowSet,
    train_ends: np.ndarray,
    val_ends: np.ndarray,
    spec: ModelSpec,
    config: TrainConfig,
    device: torch.device,
    *,
    label_settings: dict[str, Any] | None = None,
    feature_spec: dict[str, Any] | None = None,
    started: float | None = None,
) -> TrainResult:
    """Prior correction and temperature on the validation block, then the bundle."""
    t0 = time.perf_counter() if started is None else started
    model, scaler = trained.model, trained.scaler
    X = scaler.transform(windows.X)
    weights = class_weights(windows.y[train_ends]) if config.class_weighting else np.ones(3)
    bias = prior_correction(weights)
    val_logits = predict_logits(model, windows, X, val_ends, device, config.eval_batch_size) + bias
    val_y = windows.y[val_ends]
    temperature = fit_temperature(val_logits, val_y)
    before, after = softmax(val_logits), softmax(val_logits, temperature)
    model.to("cpu")
    bundle = ModelBundle(
        kind=spec.kind,
        model_config=trained.model_config,
        model=model,
        scaler=scaler,
        temperature=temperature,
        logit_bias=tuple(float(b) for b in bias),
        lookback=spec.lookback,
        feature_names=tuple(windows.series[0].feature_names)
        or tuple(f"f{i}" for i in range(windows.n_features)),
        symbols=tuple(windows.symbols),
        label_settings=dict(label_settings or {}),
        feature_spec=feature_spec,
    )
    return TrainResult(
        bundle=bundle,
        best_epoch=trained.best_epoch,
        epochs_run=sum(
            1 for row in trained.history if row["epoch"] > 0 and row.get("member", 0.0) == 0.0
        ),
        val_dacc=direction_accuracy(val_logits, windows.r[val_ends]),
        val_nll_before=nll(before, val_y),
        val_nll_after=nll(after, val_y),
        val_ece_before=expected_calibration_error(before, val_y),
        val_ece_after=expected_calibration_error(after, val_y),
        train_seconds=time.perf_counter() - t0,
        windows_per_second=trained.windows_per_second,
        history=trained.history,
        member_best_epochs=list(trained.member_best_epochs) or [trained.best_epoch],
    )
