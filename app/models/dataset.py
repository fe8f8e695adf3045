"""Sliding windows over a feature matrix, with labels, segments, scaling and class weights.

Why it looks like this:
- Windows are never materialized per sample. All series of a model (several tickers of one
  asset class) are stacked into one ``(rows, F)`` matrix and a window is addressed by its *end
  row* ``t`` (the bar the decision is made on); a batch is gathered with one fancy index
  ``X[t - L + 1 .. t]``, so memory stays ``rows x F`` whatever the lookback.
- Segments: a gap in the 5-minute grid (stock overnight, forex weekend, a missing bar) starts a
  new segment. A window is valid only if all its ``L`` rows lie in one segment, and a label is
  kept only if its horizon ``t+T`` lies in the same segment as ``t``: neither inputs nor labels
  straddle a gap. The label threshold's sigma uses the series' own realized returns (overnight
  ones included), from the past only, as app/labels.py defines.
- Scalers are fitted on the rows that training windows cover, nothing else (DESIGN.md, Time).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from app.labels import NO_LABEL, make_labels

BAR_NS = 5 * 60 * 1_000_000_000
N_CLASSES = 3


def find_segments(ts_ns: np.ndarray, bar_ns: int = BAR_NS) -> np.ndarray:
    """Segment id per row: a new segment starts wherever the step is not exactly one bar."""
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    if ts_ns.size == 0:
        return np.zeros(0, dtype=np.int64)
    steps = np.diff(ts_ns)
    if np.any(steps <= 0):
        bad = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise ValueError(f"ts: not strictly increasing at row {bad}")
    return np.concatenate([[0], np.cumsum(steps != bar_ns)]).astype(np.int64)


@dataclass(frozen=True)
class LabeledSeries:
    """One ticker: features and labels row-aligned with its bars (ts = bar open, int64 ns)."""

    symbol: str
    ts: np.ndarray  # (n,) int64 ns
    features: np.ndarray  # (n, F) float32, NaN allowed in warm-up rows
    open: np.ndarray  # (n,) float64
    close: np.ndarray  # (n,) float64
    r: np.ndarray  # (n,) forward log return over T bars; NaN where unknown or across a gap
    theta: np.ndarray  # (n,) label threshold
    y: np.ndarray  # (n,) int64 class, NO_LABEL where r is NaN
    segment: np.ndarray  # (n,) int64 segment id
    feature_names: tuple[str, ...] = ()
    headlines: Any = None  # app.text.impact.HeadlineEvents for fold-fitted columns


def label_series(
    symbol: str,
    ts_ns: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    features: np.ndarray,
    label_settings: Any,
    feature_names: Sequence[str] = (),
    headlines: Any = None,
) -> LabeledSeries:
    """Attach labels (app/labels.py) and segments to one ticker's feature matrix."""
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    features = np.asarray(features, dtype=np.float32)
    n = ts_ns.size
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(f"features: shape {features.shape} does not match {n} bars")
    segment = find_segments(ts_ns)
    r, theta, y = make_labels(np.asarray(close, dtype=np.float64), label_settings)
    horizon = int(label_settings.horizon)
    crosses = np.ones(n, dtype=bool)
    if n > horizon:
        crosses[:-horizon] = segment[horizon:] != segment[:-horizon]
    r = np.where(crosses, np.nan, r)
    y = np.where(crosses, NO_LABEL, y).astype(np.int64)
    return LabeledSeries(
        symbol=symbol,
        ts=ts_ns,
        features=features,
        open=np.asarray(open_, dtype=np.float64),
        close=np.asarray(close, dtype=np.float64),
        r=r,
        theta=theta,
        y=y,
        segment=segment,
        feature_names=tuple(feature_names),
        headlines=headlines,
    )


@dataclass
class FeatureScaler:
    """Per-feature standardization fitted on training rows only; clipped to +-clip."""

    mean: np.ndarray
    std: np.ndarray
    clip: float = 10.0

    @classmethod
    def fit(cls, rows: np.ndarray, clip: float = 10.0) -> FeatureScaler:
        if rows.shape[0] == 0:
            raise ValueError("FeatureScaler.fit: no training rows")
        mean = np.nanmean(rows, axis=0).astype(np.float64)
        std = np.nanstd(rows, axis=0).astype(np.float64)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        return cls(mean=mean, std=std, clip=clip)

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return np.clip(z, -self.clip, self.clip).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "clip": self.clip}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureScaler:
        return cls(
            np.asarray(d["mean"], dtype=np.float64),
            np.asarray(d["std"], dtype=np.float64),
            float(d["clip"]),
        )


@dataclass
class WindowSet:
    """Several tickers stacked into one matrix; windows addressed by global end row."""

    series: list[LabeledSeries]
    lookback: int
    X: np.ndarray = field(init=False)  # (rows, F) float32, raw until scale() is called
    ts: np.ndarray = field(init=False)
    y: np.ndarray = field(init=False)
    r: np.ndarray = field(init=False)
    theta: np.ndarray = field(init=False)
    open: np.ndarray = field(init=False)
    close: np.ndarray = field(init=False)
    ticker: np.ndarray = field(init=False)  # (rows,) index into series
    segment: np.ndarray = field(init=False)  # (rows,) globally unique segment id
    valid_end: np.ndarray = field(init=False)  # (rows,) bool: a full, finite, in-segment window

    def __post_init__(self) -> None:
        if not self.series:
            raise ValueError("WindowSet: no series")
        if self.lookback < 1:
            raise ValueError(f"lookback={self.lookback}: must be >= 1")
        widths = {s.features.shape[1] for s in self.series}
        if len(widths) != 1:
            raise ValueError(f"series have different feature counts: {sorted(widths)}")
        cat = np.concatenate
        self.X = cat([s.features for s in self.series]).astype(np.float32, copy=False)
        self.ts = cat([s.ts for s in self.series])
        self.y = cat([s.y for s in self.series])
        self.r = cat([s.r for s in self.series])
        self.theta = cat([s.theta for s in self.series])
        self.open = cat([s.open for s in self.series])
        self.close = cat([s.close for s in self.series])
        self.ticker = cat(
            [np.full(s.ts.size, i, dtype=np.int64) for i, s in enumerate(self.series)]
        )
        offset, segs = 0, []
        for s in self.series:  # globally unique segment ids: series never join
            segs.append(s.segment + offset)
            offset = int(segs[-1].max()) + 1 if s.segment.size else offset
        segment = self.segment = cat(segs)
        rows = self.X.shape[0]
        length = self.lookback
        bad_row = ~np.all(np.isfinite(self.X), axis=1)
        bad_count = np.concatenate([[0], np.cumsum(bad_row)])
        end = np.arange(rows)
        start = end - length + 1
        ok = start >= 0
        start_c = np.clip(start, 0, None)
        ok &= segment[start_c] == segment
        ok &= (bad_count[end + 1] - bad_count[start_c]) == 0
        self.valid_end = ok

    def series_rows(self, index: int) -> slice:
        """The rows of ``series[index]`` in the stacked matrix."""
        start = sum(s.ts.size for s in self.series[:index])
        return slice(start, start + self.series[index].ts.size)

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def symbols(self) -> list[str]:
        return [s.symbol for s in self.series]

    def labeled_ends(self, ts_from: int | None = None, ts_to: int | None = None) -> np.ndarray:
        """End rows of valid, labeled windows whose decision bar ts is in [ts_from, ts_to)."""
        mask = self.valid_end & (self.y >= 0)
        if ts_from is not None:
            mask &= self.ts >= ts_from
        if ts_to is not None:
            mask &= self.ts < ts_to
        return np.flatnonzero(mask)

    def covered_rows(self, ends: np.ndarray) -> np.ndarray:
        """Rows read by the windows ending at ``ends`` (what a scaler may be fitted on)."""
        diff = np.zeros(self.X.shape[0] + 1, dtype=np.int64)
        np.add.at(diff, ends - self.lookback + 1, 1)
        np.add.at(diff, ends + 1, -1)
        return np.flatnonzero(np.cumsum(diff[:-1]) > 0)

    def gather(self, ends: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """(B, L, F) windows ending at ``ends`` from ``X`` (default: the raw matrix)."""
        src = self.X if X is None else X
        idx = np.asarray(ends)[:, None] + np.arange(-self.lookback + 1, 1)[None, :]  # (B, L)
        return src[idx]

    def prev_return(self, ends: np.ndarray) -> np.ndarray:
        """log(close[t] / close[t-1]) of the decision bar; 0 at a segment's first bar."""
        ends = np.asarray(ends)
        prev = np.clip(ends - 1, 0, None)
        same = (ends > 0) & (self.segment[prev] == self.segment[ends])
        return np.where(same, np.log(self.close[ends] / self.close[prev]), 0.0)

    def last_rows(self, ends: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """(B, F) features of the decision bar itself (what tabular baselines see)."""
        src = self.X if X is None else X
        return src[np.asarray(ends)]


def class_weights(y: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Inverse-frequency weights, mean 1 over samples; a missing class gets weight 1."""
    counts = np.bincount(y[y >= 0], minlength=n_classes).astype(np.float64)
    total = counts.sum()
    w = np.where(counts > 0, total / (n_classes * np.maximum(counts, 1)), 1.0)
    return w


def iterate_batches(
    windows: WindowSet,
    X: np.ndarray,
    ends: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = False,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (x (B, L, F) float32, y (B,) int64, ticker (B,) int64) CPU tensors."""
    order = np.asarray(ends)
    if shuffle:
        if rng is None:
            raise ValueError("iterate_batches: shuffle needs an rng (determinism)")
        order = order[rng.permutation(order.size)]
    for i in range(0, order.size, batch_size):
        chunk = order[i : i + batch_size]
        x = torch.from_numpy(windows.gather(chunk, X))
        y = torch.from_numpy(windows.y[chunk].astype(np.int64))
        tk = torch.from_numpy(windows.ticker[chunk])
        yield x, y, tk
