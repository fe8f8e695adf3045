"""Walk-forward folds: train, validation and test blocks, strictly chronological.

Folds are cut on the sorted grid of distinct bar timestamps of all tickers, so every ticker of
a multi-ticker model shares the same boundaries. Layout of fold ``k`` (positions on the grid)::

    [train ........)  purge  [val ..)  purge  [test ..)  embargo | next fold's test ...

- ``purge`` (default ``lookback + horizon`` bars) separates train from val and val from test:
  the last training label ends (``t + T``) before the first input row of the next block
  (``t' - L + 1``), so no validation/test window shares a bar with a training window.
- ``embargo`` bars after each test block belong to no test block; the next fold's test starts
  after it, which keeps fold scores from sharing the bars right at a boundary.
- ``expanding`` training starts at the first bar; ``rolling`` keeps the last ``train_bars``.
Sizes: test and validation blocks have the same length ``S``; the first fold trains on
``initial_train_blocks * S`` bars.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from app.errors import InputError


@dataclass(frozen=True)
class Fold:
    index: int
    train: tuple[int, int]  # [start, stop) positions on the timestamp grid
    val: tuple[int, int]
    test: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FoldTimes:
    """A fold as half-open timestamp ranges (int64 ns), ready for ``WindowSet.labeled_ends``."""

    index: int
    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]


def make_folds(
    n_bars: int,
    n_folds: int,
    *,
    purge: int,
    embargo: int = 0,
    scheme: Literal["expanding", "rolling"] = "expanding",
    initial_train_blocks: int = 3,
    train_bars: int | None = None,
    min_block: int = 20,
) -> list[Fold]:
    """Cut ``n_bars`` grid positions into ``n_folds`` walk-forward folds.

    Raises InputError naming the numbers when the series is too short.
    """
    if n_folds < 1:
        raise InputError(f"folds={n_folds}: need at least 1")
    if purge < 0 or embargo < 0:
        raise InputError(f"purge={purge}, embargo={embargo}: must be >= 0")
    if scheme not in ("expanding", "rolling"):
        raise InputError(f"scheme={scheme!r}: expected 'expanding' or 'rolling'")
    blocks = initial_train_blocks + 1 + n_folds  # first train + first val + K tests
    usable = n_bars - 2 * purge - (n_folds - 1) * embargo
    size = usable // blocks if usable > 0 else 0
    if size < min_block:
        need = blocks * min_block + 2 * purge + (n_folds - 1) * embargo
        raise InputError(
            f"too few bars: {n_bars} usable bars (full window + label) for {n_folds} folds "
            f"with purge={purge} and "
            f"embargo={embargo} give blocks of {size} bars; need >= {need} bars "
            f"(blocks of >= {min_block})"
        )
    first_test = initial_train_blocks * size + purge + size + purge
    folds = []
    for k in range(n_folds):
        test_start = first_test + k * (size + embargo)
        test_stop = test_start + size if k < n_folds - 1 else n_bars  # last takes the rest
        val_stop = test_start - purge
        val_start = val_stop - size
        train_stop = val_start - purge
        train_start = 0
        if scheme == "rolling":
            width = train_bars or initial_train_blocks * size
            train_start = max(0, train_stop - width)
        folds.append(
            Fold(k, (train_start, train_stop), (val_start, val_stop), (test_start, test_stop))
        )
    return folds


def fold_times(fold: Fold, grid: np.ndarray) -> FoldTimes:
    """Positions -> timestamp ranges; a range ending at the grid's end is open above."""

    def rng(a: int, b: int) -> tuple[int, int]:
        hi = int(grid[b]) if b < grid.size else int(grid[-1]) + 1
        return int(grid[a]), hi

    return FoldTimes(fold.index, rng(*fold.train), rng(*fold.val), rng(*fold.test))
