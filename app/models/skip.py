"""The linear skip path: start a sequence model from logistic regression on the last bar.

Both networks add ``skip(x[:, -1])`` (a linear map of the decision bar's scaled features) to
their head, whose weights start at zero. ``fit_linear_init`` fits that map by multinomial
logistic regression (the ``logreg`` baseline's estimator and regularisation) on the training
windows' last bars, so before the first gradient step the network *is* the baseline; the
training loop keeps that starting point as "epoch 0", a candidate for early stopping like
every epoch, and the encoder can only replace it by doing better on validation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

N_CLASSES = 3
ABSENT_LOGIT = -20.0  # a class missing from training: (almost) zero probability


@dataclass(frozen=True)
class LinearInit:
    """Weights (3, F) and bias (3,) of the skip path, in the class-weighted loss's scale."""

    weight: np.ndarray
    bias: np.ndarray


def skip_layer(model: nn.Module) -> nn.Linear | None:
    """The model's skip ``nn.Linear`` (through a DDP wrapper), or None if it has none."""
    inner = getattr(model, "module", model)
    skip = getattr(inner, "skip", None)
    return skip if isinstance(skip, nn.Linear) else None


def fit_linear_init(
    x_last: np.ndarray,
    y: np.ndarray,
    class_weight: np.ndarray,
    c: float = 0.1,
    seed: int = 0,
) -> LinearInit:
    """Logistic regression (L2, ``C = c``) of ``y`` on the scaled last-bar rows ``x_last``.

    The fit is unweighted, like the baseline; ``log w_c`` is then added to the bias because the
    network trains with class weights ``w_c`` and its logits are prior-corrected by ``-log w_c``
    afterwards (train.prior_correction): the corrected logits equal the baseline's exactly, and
    the uncorrected ones are the optimum of the weighted loss for the same linear scores."""
    from sklearn.linear_model import LogisticRegression

    x_last = np.asarray(x_last, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if x_last.ndim != 2 or x_last.shape[0] != y.size or y.size == 0:
        raise ValueError(f"fit_linear_init: x_last {x_last.shape} and y {y.shape} do not match")
    weight = np.zeros((N_CLASSES, x_last.shape[1]))
    bias = np.full(N_CLASSES, ABSENT_LOGIT)
    classes = np.unique(y)
    if classes.size == 1:
        bias[classes[0]] = 0.0
    else:
        model = LogisticRegression(C=c, max_iter=300, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter on noisy data
            model.fit(x_last, y)
        coef, intercept = model.coef_, model.intercept_
        if coef.shape[0] == 1:  # binary: the score of classes_[1] against classes_[0]
            weight[model.classes_[1]], bias[model.classes_[1]] = coef[0], intercept[0]
            bias[model.classes_[0]] = 0.0
        else:
            weight[model.classes_], bias[model.classes_] = coef, intercept
    bias = bias + np.log(np.asarray(class_weight, dtype=np.float64))
    return LinearInit(weight=weight, bias=bias)


@torch.no_grad()
def apply_linear_init(model: nn.Module, init: LinearInit) -> None:
    """Copy ``init`` into the model's skip path (ValueError if it has none)."""
    skip = skip_layer(model)
    if skip is None:
        raise ValueError(f"{type(model).__name__}: no skip path to initialise")
    skip.weight.copy_(torch.as_tensor(init.weight, dtype=skip.weight.dtype))
    skip.bias.copy_(torch.as_tensor(init.bias, dtype=skip.bias.dtype))


def param_groups(model: nn.Module, lr: float, skip_lr_scale: float) -> list[dict]:
    """AdamW groups: the skip path at ``lr * skip_lr_scale`` (0 keeps it at its init), the
    rest at ``lr``. AdamW's decay is scaled by the group's lr, so 0 also means no decay."""
    skip = skip_layer(model)
    if skip is None:
        return [{"params": list(model.parameters()), "lr": lr}]
    skip_ids = {id(p) for p in skip.parameters()}
    rest = [p for p in model.parameters() if id(p) not in skip_ids]
    return [
        {"params": rest, "lr": lr},
        {"params": list(skip.parameters()), "lr": lr * skip_lr_scale},
    ]
