"""Baselines scored on the same folds and bars as the neural models.

Every baseline returns probabilities ordered [P(UP), P(DOWN), P(FLAT)], so the same metric
code scores all of them. Tabular baselines see the current bar's features only (the last row
of each window), fitted on the fold's training windows.
"""

from __future__ import annotations

import warnings

import numpy as np

from app.labels import DOWN, FLAT, UP

N_CLASSES = 3


def class_frequencies(y_train: np.ndarray) -> np.ndarray:
    """Laplace-smoothed class shares of the training labels."""
    counts = np.bincount(y_train[y_train >= 0], minlength=N_CLASSES).astype(np.float64) + 1.0
    return counts / counts.sum()


def majority_baseline(y_train: np.ndarray, n: int) -> np.ndarray:
    """Always the training class shares: the majority class is the constant call."""
    return np.tile(class_frequencies(y_train), (n, 1))


def prev_sign_baseline(
    prev_return: np.ndarray, y_train: np.ndarray, tilt: float = 0.01
) -> np.ndarray:
    """Direction = sign of the previous bar's return (momentum); P(FLAT) = training share,
    the directional mass split ``0.5 +- tilt`` toward that sign (a zero return calls DOWN,
    as app.labels.dacc does for a tie)."""
    p_flat = class_frequencies(y_train)[FLAT]
    up = np.where(prev_return > 0, 0.5 + tilt, 0.5 - tilt) * (1 - p_flat)
    probs = np.empty((prev_return.size, N_CLASSES))
    probs[:, UP] = up
    probs[:, DOWN] = (1 - p_flat) - up
    probs[:, FLAT] = p_flat
    return probs


def _full_proba(classes: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Expand a classifier's probabilities to all 3 classes (a class absent from training
    gets 0)."""
    out = np.zeros((proba.shape[0], N_CLASSES))
    out[:, classes.astype(np.int64)] = proba
    return out


def logreg_baseline(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Multinomial logistic regression on standardized current-bar features."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=0.1, max_iter=300, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on noisy data
        model.fit(x_train, y_train)
    return _full_proba(model.classes_, model.predict_proba(x_test))


def lightgbm_baseline(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_test: np.ndarray,
    seed: int = 0,
    n_threads: int = 1,
) -> np.ndarray:
    """LightGBM with early stopping on the validation block (same one the network uses);
    binary when training holds only UP/DOWN (a zero threshold), multiclass otherwise."""
    import lightgbm as lgb

    model = lgb.LGBMClassifier(
        n_estimators=300,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=50,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=seed,
        n_jobs=n_threads,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    known = np.isin(y_val, np.unique(y_train))  # a class unseen in training cannot be scored
    model.fit(
        x_train,
        y_train,
        eval_X=(x_val[known],),
        eval_y=(y_val[known],),
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    return _full_proba(model.classes_, model.predict_proba(x_test))
