"""Market-supervised news impact: learn from the training window what a headline does to price.

A sentiment model says whether a sentence reads positive; it does not know that "fees drop
sharply" is good for a chain or that "drops its case" is good for the defendant. The market
does. Per walk-forward fold we fit a ridge regression from each headline's text embedding to
the volatility-normalised return that followed it (``horizon_bars`` after the first bar close
at which it was public), using only headlines whose outcome bar lies inside the fold's training
window. The fitted model then scores every headline from its text alone, and the feature
columns are decayed sums of those scores (the same shape as the sentiment sums).

No look-ahead: a training target is known at its outcome bar, which is inside the training
window, and the purge gap keeps it clear of validation and test; validation and test headlines
are scored by a model that never saw their outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.kernels import decayed_cumulative, rolling_mean_std
from app.types import BAR_NS

MINUTE_NS = 60 * 1_000_000_000
IMPACT_HALF_LIVES_MIN: tuple[int, ...] = (15, 60)
IMPACT_COLUMNS: tuple[str, ...] = tuple(f"news_impact_{h}" for h in IMPACT_HALF_LIVES_MIN)
HORIZON_BARS = 6  # 30 minutes of 5-minute bars after the headline
VOL_WINDOW = 288  # one day of bars for the trailing volatility that normalises the target
MIN_HEADLINES = 50  # fewer training headlines: no model, the columns stay 0
ALPHAS = tuple(float(a) for a in np.logspace(-1, 3, 9))


@dataclass(frozen=True)
class HeadlineEvents:
    """One symbol's headlines aligned to its bars (rows of the series)."""

    published_ns: np.ndarray  # (h,) int64
    embeddings: np.ndarray  # (h, d) float32
    bar: np.ndarray  # (h,) first row whose close (ts + 5 min) >= published; n if none
    target: np.ndarray  # (h,) forward log return / (trailing sigma * sqrt(horizon)); NaN unknown
    # (no target for a headline in the first vol_window bars: the sigma needs a full window)
    outcome_ts: np.ndarray  # (h,) ts of the row where the target is realised; int64 max if none


def headline_events(
    ts_ns: np.ndarray,
    close: np.ndarray,
    published_ns: np.ndarray,
    embeddings: np.ndarray,
    horizon_bars: int = HORIZON_BARS,
    vol_window: int = VOL_WINDOW,
) -> HeadlineEvents:
    """Targets for ``published_ns`` headlines on one series (bar open times ``ts_ns``)."""
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    n = ts_ns.size
    bar = np.searchsorted(ts_ns + BAR_NS, np.asarray(published_ns, dtype=np.int64), side="left")
    log_close = np.log(np.asarray(close, dtype=np.float64))
    step = np.diff(log_close, prepend=np.nan)
    # trailing sigma of one-bar returns up to and including each row (past only)
    sigma = rolling_mean_std(step, vol_window, start=1)[1]
    target = np.full(bar.size, np.nan)
    outcome_ts = np.full(bar.size, np.iinfo(np.int64).max, dtype=np.int64)
    ok = bar + horizon_bars < n
    # the outcome must be exactly horizon_bars later: no overnight or weekend gap inside it
    ok[ok] = ts_ns[bar[ok] + horizon_bars] - ts_ns[bar[ok]] == horizon_bars * BAR_NS
    j = bar[ok]
    move = log_close[j + horizon_bars] - log_close[j]
    scale = sigma[j] * np.sqrt(horizon_bars)
    with np.errstate(invalid="ignore", divide="ignore"):
        target[ok] = np.where(scale > 0, move / scale, np.nan)
    outcome_ts[ok] = ts_ns[j + horizon_bars]
    return HeadlineEvents(
        published_ns=np.asarray(published_ns, dtype=np.int64),
        embeddings=np.asarray(embeddings, dtype=np.float32),
        bar=bar,
        target=target,
        outcome_ts=outcome_ts,
    )


@dataclass(frozen=True)
class NewsImpactModel:
    """Ridge regression embedding -> normalised forward return; alpha by leave-one-out CV."""

    coef: np.ndarray
    intercept: float
    alpha: float
    n_train: int
    horizon_bars: int = HORIZON_BARS

    @classmethod
    def fit(
        cls, events: list[HeadlineEvents], train_from_ns: int, train_to_ns: int
    ) -> NewsImpactModel | None:
        """Fit on headlines whose outcome row ts is in ``[train_from_ns, train_to_ns)``."""
        from sklearn.linear_model import RidgeCV

        xs, ys = [], []
        for ev in events:
            use = np.isfinite(ev.target)
            use &= (ev.outcome_ts >= train_from_ns) & (ev.outcome_ts < train_to_ns)
            xs.append(ev.embeddings[use])
            ys.append(ev.target[use])
        if not xs or sum(len(y) for y in ys) < MIN_HEADLINES:
            return None
        x, y = np.vstack(xs).astype(np.float64), np.concatenate(ys)
        y = np.clip(y, -5.0, 5.0)  # a crash bar should not own the fit
        ridge = RidgeCV(alphas=ALPHAS).fit(x, y)
        return cls(
            coef=np.asarray(ridge.coef_, dtype=np.float64),
            intercept=float(ridge.intercept_),
            alpha=float(ridge.alpha_),
            n_train=int(len(y)),
        )

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings, dtype=np.float64) @ self.coef + self.intercept

    def to_dict(self) -> dict[str, Any]:
        return {
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "alpha": self.alpha,
            "n_train": self.n_train,
            "horizon_bars": self.horizon_bars,
            "half_lives_min": list(IMPACT_HALF_LIVES_MIN),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NewsImpactModel:
        return cls(
            coef=np.asarray(d["coef"], dtype=np.float64),
            intercept=float(d["intercept"]),
            alpha=float(d["alpha"]),
            n_train=int(d["n_train"]),
            horizon_bars=int(d["horizon_bars"]),
        )


def impact_columns(
    ts_ns: np.ndarray, events: HeadlineEvents, model: NewsImpactModel | None
) -> np.ndarray:
    """(n, len(IMPACT_COLUMNS)) decayed sums of predicted impact; a headline counts from the
    first bar whose close is at or after its publication (DESIGN.md, Time)."""
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    out = np.zeros((ts_ns.size, len(IMPACT_HALF_LIVES_MIN)))
    if model is None or events.bar.size == 0:
        return out
    close_ns = ts_ns + BAR_NS
    inside = events.bar < ts_ns.size
    bar, pub = events.bar[inside], events.published_ns[inside]
    impact = model.predict(events.embeddings[inside])
    for k, minutes in enumerate(IMPACT_HALF_LIVES_MIN):
        half_life = minutes * MINUTE_NS
        decay = np.exp2(-(close_ns[bar] - pub) / half_life)
        inflow = np.bincount(bar, weights=impact * decay, minlength=ts_ns.size)
        out[:, k] = decayed_cumulative(close_ns, inflow, half_life)
    return out
