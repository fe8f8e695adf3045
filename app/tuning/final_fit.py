"""The final fit of a chosen configuration with Ray Train's ``TorchTrainer``.

A sweep picks a configuration on many small trials; the model to register is then trained once
more, data-parallel: ``num_workers`` workers (one GPU each when the cluster has enough GPUs,
else CPUs) each train on their share of every epoch's windows while DDP averages gradients.
Scaling, early stopping and calibration follow ``app.models.train`` exactly: the scaler is
fitted on the training rows, rank 0's validation scores decide the stop for everyone, and the
temperature is fitted on the validation block in the driver. With one worker the result is
bit-identical to ``fit_model`` (tests/integration/test_torchtrainer_final_fit.py).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.models.dataset import WindowSet
from app.models.factory import build_model
from app.models.train import (
    ModelSpec,
    TrainConfig,
    TrainedModel,
    TrainResult,
    finish_training,
    prepare_training,
    seed_everything,
    train_classifier,
)

WEIGHTS = "weights.pt"
HISTORY = "history.json"


def _train_worker(loop_config: dict[str, Any]) -> None:
    """Runs in every Ray Train worker: one shard of each epoch, DDP-averaged gradients."""
    import ray.train
    import ray.train.torch

    torch.set_num_threads(int(loop_config["torch_threads"]))
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    windows: WindowSet = loop_config["windows"]
    spec: ModelSpec = loop_config["spec"]
    config: TrainConfig = loop_config["config"]
    train_ends, val_ends = loop_config["train_ends"], loop_config["val_ends"]
    _, X, model_config = prepare_training(windows, train_ends, spec)
    seed_everything(config.seed)
    model = build_model(spec.kind, model_config)
    device = ray.train.torch.get_device()
    if world > 1:
        model = ray.train.torch.prepare_model(model)  # DDP; moves the model to ``device``
    model, history, best_epoch, wps = train_classifier(
        model, windows, X, train_ends, val_ends, config, device, shard=(rank, world)
    )
    metrics = {"best_epoch": best_epoch, "epochs_run": len(history), "windows_per_s": wps}
    if rank != 0:
        ray.train.report(metrics)
        return
    inner = getattr(model, "module", model)
    with tempfile.TemporaryDirectory() as folder:
        torch.save({k: v.cpu() for k, v in inner.state_dict().items()}, Path(folder) / WEIGHTS)
        (Path(folder) / HISTORY).write_text(json.dumps({"history": history, **metrics}))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def gpus_per_worker_available(num_workers: int) -> bool:
    """True when the running Ray cluster has a GPU for every worker."""
    import ray

    return ray.cluster_resources().get("GPU", 0) >= num_workers


def fit_with_torch_trainer(
    windows: WindowSet,
    train_ends: np.ndarray,
    val_ends: np.ndarray,
    spec: ModelSpec,
    config: TrainConfig,
    *,
    num_workers: int = 2,
    use_gpu: bool | None = None,
    torch_threads: int = 1,
    storage_path: str | Path | None = None,
    label_settings: dict[str, Any] | None = None,
    feature_spec: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``spec`` on ``train_ends`` with ``num_workers`` data-parallel workers; calibrate
    on ``val_ends`` here. ``use_gpu=None``: GPUs when the cluster has one per worker."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if num_workers < 1:
        raise ValueError(f"num_workers={num_workers!r}: must be >= 1")
    if config.ensemble > 1:
        raise ValueError(f"ensemble={config.ensemble}: the TorchTrainer final fit trains one model")
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    if use_gpu is None:
        use_gpu = gpus_per_worker_available(num_workers)
    t0 = time.perf_counter()
    storage = Path(storage_path or tempfile.mkdtemp(prefix="final-fit-")).resolve()
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={
            "windows": windows,
            "spec": spec,
            "config": config,
            "train_ends": train_ends,
            "val_ends": val_ends,
            "torch_threads": torch_threads,
        },
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu),
        run_config=RunConfig(name="final-fit", storage_path=str(storage)),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"final fit: no checkpoint reported (error: {result.error!r})")
    scaler, _, model_config = prepare_training(windows, train_ends, spec)
    model = build_model(spec.kind, model_config)
    with result.checkpoint.as_directory() as folder:
        model.load_state_dict(torch.load(Path(folder) / WEIGHTS, weights_only=True))
        info = json.loads((Path(folder) / HISTORY).read_text())
    device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
    trained = TrainedModel(
        model.to(device),
        model_config,
        scaler,
        info["history"],
        int(info["best_epoch"]),
        float(info["windows_per_s"]) * num_workers,  # each worker saw 1/num_workers of them
    )
    return finish_training(
        trained,
        windows,
        train_ends,
        val_ends,
        spec,
        config,
        device,
        label_settings=label_settings,
        feature_spec=feature_spec,
        started=t0,
    )
