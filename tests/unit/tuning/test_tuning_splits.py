"""Folds are chronological and purged: no test window touches a training window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.config import LabelSettings
from app.errors import InputError
from app.models.dataset import WindowSet, label_series
from app.tuning.splits import fold_times, make_folds
from app.tuning.walkforward import WalkForwardConfig, folds_for
from app.types import AssetClass

BAR = 5 * 60 * 10**9


def stock_like_windows(lookback=12, horizon=3, days=40, symbols=("AAA", "BBB")):
    """78-bar sessions with overnight gaps, two tickers with one missing bar each."""
    series = []
    for k, sym in enumerate(symbols):
        days_ns = (
            pd.date_range("2025-06-02 13:30", periods=days, freq="B", tz="UTC")
            .astype("datetime64[ns, UTC]")
            .asi8
        )
        ts = (days_ns[:, None] + np.arange(78)[None, :] * BAR).ravel()
        ts = np.delete(ts, 500 + 17 * k)
        rng = np.random.default_rng(k)
        close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, ts.size)))
        f = rng.normal(size=(ts.size, 3)).astype(np.float32)
        series.append(
            label_series(sym, ts, close, close, f, LabelSettings(horizon=horizon, sigma_window=20))
        )
    return WindowSet(series, lookback)


@pytest.mark.parametrize("scheme", ["expanding", "rolling"])
def test_no_test_window_overlaps_any_training_window_labels_included(scheme):
    lookback, horizon = 12, 3
    w = stock_like_windows(lookback, horizon)
    cfg = WalkForwardConfig(
        asset_class=AssetClass.STOCKS, n_folds=4, horizon=horizon, scheme=scheme
    )
    folds, grid = folds_for(w, cfg)
    assert len(folds) == 4
    last_test_start = -1
    for fold in folds:
        ft = fold_times(fold, grid)
        parts = {p: w.labeled_ends(*getattr(ft, p)) for p in ("train", "val", "test")}
        assert all(v.size > 0 for v in parts.values())

        def span(ends):  # [first input bar ts, last label bar ts] of every window, in time
            first_in = w.ts[ends - lookback + 1]
            label_end = w.ts[ends + horizon]
            return first_in, label_end

        tr_first, tr_last = span(parts["train"])
        va_first, va_last = span(parts["val"])
        te_first, te_last = span(parts["test"])
        assert tr_last.max() < va_first.min()  # training labels end before validation inputs
        assert va_last.max() < te_first.min()
        assert tr_last.max() < te_first.min()
        assert te_first.min() > last_test_start  # strictly chronological across folds
        last_test_start = te_first.min()
        # labels never leave their segment
        assert np.all(w.segment[parts["test"] + horizon] == w.segment[parts["test"]])


def test_fold_layout_purge_embargo_and_rolling_width():
    folds = make_folds(1000, 3, purge=10, embargo=5, scheme="rolling", initial_train_blocks=3)
    size = (1000 - 20 - 10) // 7
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.test[0] - a.test[1] == 5  # embargo
    for f in folds:
        assert f.val[0] - f.train[1] == 10 and f.test[0] - f.val[1] == 10
        assert f.train[1] - f.train[0] == 3 * size
    assert folds[-1].test[1] == 1000
    exp = make_folds(1000, 3, purge=10, embargo=5)
    assert all(f.train[0] == 0 for f in exp)


def test_too_few_bars_names_the_numbers():
    with pytest.raises(InputError, match=r"300 usable bars \(full window \+ label\) for 5 folds"):
        make_folds(300, 5, purge=61, embargo=1, min_block=50)
