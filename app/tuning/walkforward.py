"""Walk-forward evaluation of one model configuration against baselines and the oracle.

For every fold (app.tuning.splits): fit scaler + network + temperature on train/val
(app.models.train.fit_model, the same code the sweep trainables call), fit the tabular
baselines on the same training windows, and score everything on the same test bars. The
simulator's oracle, when present, is scored on those bars too. Pure computation: no Ray, no
IO (report.py writes files).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from app.config import CostSettings, RiskSettings
from app.errors import InputError
from app.labels import dacc
from app.models import baselines as bl
from app.models.calibration import expected_calibration_error, softmax
from app.models.dataset import WindowSet
from app.models.train import ModelSpec, TrainConfig, TrainResult, fit_model, predict_logits
from app.models.train_state import TrainState
from app.sim.oracle import oracle_probabilities
from app.text.impact import IMPACT_COLUMNS, NewsImpactModel, impact_columns
from app.tuning.event_backtest import fold_backtest, pooled_backtest
from app.tuning.metrics import (
    BARS_PER_YEAR,
    classification_metrics,
    performance,
    positions_from_probs,
    strategy_returns,
    summarize_fold_values,
)
from app.tuning.significance import (
    binomial_vs,
    dacc_standard_error,
    deflated_sharpe,
    per_period_sharpe,
)
from app.tuning.splits import Fold, fold_times, make_folds
from app.types import AssetClass

BASELINES: tuple[str, ...] = ("majority", "prev_sign", "logreg", "lightgbm")


@dataclass(frozen=True)
class WalkForwardConfig:
    asset_class: AssetClass
    spec: ModelSpec = ModelSpec()
    train: TrainConfig = TrainConfig()
    n_folds: int = 5
    scheme: str = "expanding"
    purge: int | None = None  # None = lookback + horizon
    embargo: int | None = None  # None = horizon
    horizon: int = 1
    gate: float = 0.70
    cost_bps: float = 12.0  # fee + slippage per unit of turnover
    baselines: tuple[str, ...] = BASELINES
    device: str = "auto"
    seed: int = 0
    event_backtest: tuple[str, ...] = ("model", "oracle")  # predictors run through app/backtest

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["asset_class"] = str(self.asset_class)
        return d


@dataclass
class FoldOutcome:
    fold: Fold
    times: dict[str, list[str]]
    counts: dict[str, int]
    training: dict[str, Any]
    metrics: dict[str, dict[str, Any]]  # predictor -> metrics
    probs: dict[str, np.ndarray] = field(repr=False)  # predictor -> (n_test, 3)
    returns: dict[str, pd.Series] = field(repr=False)  # predictor -> strategy returns by ts
    returns_ungated: dict[str, pd.Series] = field(repr=False)  # same, trading every call
    test_ends: np.ndarray = field(repr=False)
    result: TrainResult | None = field(default=None, repr=False)
    backtest: dict[str, dict[str, Any]] = field(default_factory=dict)  # event-driven, per name
    backtest_returns: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


@dataclass
class WalkForwardResult:
    config: WalkForwardConfig
    folds: list[FoldOutcome]
    pooled: dict[str, dict[str, Any]]
    significance: dict[str, Any]
    data: dict[str, Any]
    seconds: float
    backtest: dict[str, dict[str, Any]] = field(default_factory=dict)  # pooled, event-driven

    @property
    def last_model(self) -> TrainResult | None:
        return self.folds[-1].result if self.folds else None


def timestamp_grid(windows: WindowSet) -> np.ndarray:
    """Distinct decision-bar timestamps that have a full window and a label: folds are cut
    on these, so warm-up rows and session openings never eat a block."""
    return np.unique(windows.ts[windows.labeled_ends()])


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


@dataclass(frozen=True)
class Oracle:
    """The simulator's per-bar drift and volatility (``<SYM>_oracle.csv``) and the Student-t
    degrees of freedom of its noise over the label horizon (manifest ``oracle.df``)."""

    frames: dict[str, pd.DataFrame]
    df: float | None  # SimManifest.oracle.df; None = Normal noise


def oracle_lookup(windows: WindowSet, ends: np.ndarray, oracle: Oracle) -> np.ndarray | None:
    """Oracle probabilities on ``ends`` with *our* label threshold; None if any bar is missing.

    The oracle file holds the planted drift ``mu`` and volatility ``sigma`` of the forward
    T-bar return; the simulator's ``oracle_probabilities`` turns them into class
    probabilities for any threshold, so the oracle is scored on exactly our labels.
    """
    out = np.empty((ends.size, 3))
    for i, symbol in enumerate(windows.symbols):
        sel = np.flatnonzero(windows.ticker[ends] == i)
        if sel.size == 0:
            continue
        frame = oracle.frames.get(symbol)
        if frame is None:
            return None
        ts = frame["ts"].astype("datetime64[ns, UTC]").to_numpy("datetime64[ns]").astype(np.int64)
        want = windows.ts[ends[sel]]
        pos = np.searchsorted(ts, want)
        pos_c = np.clip(pos, 0, ts.size - 1)
        if np.any(ts[pos_c] != want):
            return None
        mu = frame["mu"].to_numpy()[pos_c]
        sigma = frame["sigma"].to_numpy()[pos_c]
        p_up, p_down, p_flat = oracle_probabilities(
            mu, sigma, windows.theta[ends[sel]], df=oracle.df
        )
        out[sel] = np.column_stack([p_up, p_down, p_flat])
    return out


def strategy_series(
    windows: WindowSet, ends: np.ndarray, probs: np.ndarray, gate: float, cost_bps: float
) -> pd.Series:
    """Net strategy returns per decision, equal-weighted across tickers at each timestamp.

    Decisions whose fill (open of t+1) or exit (open of t+2) falls outside the segment are
    flat: the book never holds across a gap.
    """
    ends = np.asarray(ends)
    pos = positions_from_probs(probs, gate)
    rows = windows.X.shape[0]
    nxt, nxt2 = np.clip(ends + 1, 0, rows - 1), np.clip(ends + 2, 0, rows - 1)
    inside = (
        (ends + 2 < rows)
        & (windows.segment[nxt] == windows.segment[ends])
        & (windows.segment[nxt2] == windows.segment[ends])
    )
    pos = np.where(inside, pos, 0.0)
    open1 = windows.open[nxt]
    open2 = np.where(inside, windows.open[nxt2], open1)
    # runs of consecutive decisions of one ticker within one segment
    brk = np.ones(ends.size, dtype=bool)
    brk[1:] = (np.diff(ends) != 1) | (windows.segment[ends[1:]] != windows.segment[ends[:-1]])
    run_id = np.cumsum(brk)
    rets = np.empty(ends.size)
    for rid in np.unique(run_id):
        m = run_id == rid
        rets[m] = strategy_returns(pos[m], open1[m], open2[m], cost_bps)
    return pd.Series(rets, index=windows.ts[ends]).groupby(level=0).mean().sort_index()


def _predictor_probs(
    name: str,
    windows: WindowSet,
    x_scaled: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    seed: int,
) -> np.ndarray:
    y_train = windows.y[train]
    if name == "majority":
        return bl.majority_baseline(y_train, test.size)
    if name == "prev_sign":
        return bl.prev_sign_baseline(windows.prev_return(test), y_train)
    if name == "logreg":
        return bl.logreg_baseline(x_scaled[train], y_train, x_scaled[test], seed)
    if name == "lightgbm":
        return bl.lightgbm_baseline(
            windows.X[train], y_train, windows.X[val], windows.y[val], windows.X[test], seed
        )
    raise InputError(f"baseline={name!r}: expected one of {BASELINES}")


def bundle_logits(
    bundle: Any, windows: WindowSet, ends: np.ndarray, x_scaled: np.ndarray | None = None
) -> np.ndarray:
    """Prior-corrected logits of ``bundle`` for the windows ending at ``ends`` (softmax with
    ``bundle.temperature`` gives its calibrated probabilities)."""
    x = bundle.scaler.transform(windows.X) if x_scaled is None else x_scaled
    logits = predict_logits(bundle.model, windows, x, ends, torch.device("cpu"))
    return logits + np.asarray(bundle.logit_bias)


def fill_news_impact(windows: WindowSet, train: tuple[int, int]) -> dict[str, Any] | None:
    """Fit the news-impact model (app/text/impact.py) on headlines whose outcome is
    inside the fold's training window and write its columns for every row; None when the
    windows carry no headlines. Returns the fitted model's dict (None: too few headlines)."""
    if all(s.headlines is None for s in windows.series):
        return None
    events = [s.headlines for s in windows.series if s.headlines is not None]
    model = NewsImpactModel.fit(events, *train)
    names = list(windows.series[0].feature_names)
    cols = [names.index(c) for c in IMPACT_COLUMNS]
    if not windows.X.flags.writeable:  # e.g. a zero-copy array from Ray's object store
        windows.X = windows.X.copy()
    for i, s in enumerate(windows.series):
        if s.headlines is not None:
            rows = windows.series_rows(i)
            windows.X[rows, cols] = impact_columns(s.ts, s.headlines, model)
    return {"fitted": False} if model is None else {"fitted": True, **model.to_dict()}


def run_fold(
    windows: WindowSet,
    fold: Fold,
    grid: np.ndarray,
    config: WalkForwardConfig,
    oracle: Oracle | None = None,
    label_settings: dict[str, Any] | None = None,
    feature_spec: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, float], Any], None] | None = None,
    *,
    bars: Mapping[str, pd.DataFrame] | None = None,
    risk: RiskSettings | None = None,
    costs: CostSettings | None = None,
    resume: TrainState | None = None,
    on_state: Callable[[TrainState], None] | None = None,
) -> FoldOutcome:
    """Train on the fold's train/val blocks; score the model, baselines and oracle on test.
    ``resume``/``on_state``: continue training from / receive the loop's state per epoch."""
    ft = fold_times(fold, grid)
    train = windows.labeled_ends(*ft.train)
    val = windows.labeled_ends(*ft.val)
    test = windows.labeled_ends(*ft.test)
    for part, ends in (("train", train), ("validation", val), ("test", test)):
        if ends.size < 10:
            raise InputError(
                f"fold {fold.index}: only {ends.size} labeled {part} windows (lookback="
                f"{windows.lookback}); use fewer folds or more bars"
            )
    impact = fill_news_impact(windows, ft.train)
    if impact is not None:  # the bundle carries what rebuilds its impact columns
        feature_spec = {**(feature_spec or {}), "news_impact": impact}
    result = fit_model(
        windows,
        train,
        val,
        config.spec,
        config.train,
        config.device,
        label_settings=label_settings,
        feature_spec=feature_spec,
        on_epoch=on_epoch,
        resume=resume,
        on_state=on_state,
    )
    bundle = result.bundle
    x_scaled = bundle.scaler.transform(windows.X)
    logits = bundle_logits(bundle, windows, test, x_scaled)
    probs = {"model": softmax(logits, bundle.temperature)}
    for name in config.baselines:
        probs[name] = _predictor_probs(name, windows, x_scaled, train, val, test, config.seed)
    if oracle is not None and oracle.frames:
        op = oracle_lookup(windows, test, oracle)
        if op is not None:
            probs["oracle"] = op
    y, r = windows.y[test], windows.r[test]
    bpy = BARS_PER_YEAR[AssetClass(config.asset_class)]
    metrics, returns, returns_all = {}, {}, {}
    for name, p in probs.items():
        m = classification_metrics(p, y, r, config.gate)
        s = strategy_series(windows, test, p, config.gate, config.cost_bps)
        s_all = strategy_series(windows, test, p, 0.0, config.cost_bps)
        returns[name], returns_all[name] = s, s_all
        m.update(performance(s.to_numpy(), bpy))
        m.update(_suffixed(performance(s_all.to_numpy(), bpy), "_ungated"))
        metrics[name] = m
    metrics["model"]["ece_uncalibrated"] = expected_calibration_error(softmax(logits), y)
    training = result.summary()
    training.pop("history")
    if impact is not None:
        training["news_impact"] = {k: impact.get(k) for k in ("fitted", "n_train", "alpha")}
    backtest, backtest_returns = {}, {}
    if bars is not None:
        for name in config.event_backtest:
            if name in probs:
                backtest[name], backtest_returns[name] = fold_backtest(
                    bars,
                    windows,
                    test,
                    probs[name],
                    AssetClass(config.asset_class),
                    risk or RiskSettings(),
                    costs or CostSettings(),
                )
    return FoldOutcome(
        fold=fold,
        times={
            k: [_iso(a), _iso(b)]
            for k, (a, b) in (("train", ft.train), ("val", ft.val), ("test", ft.test))
        },
        counts={"train": int(train.size), "val": int(val.size), "test": int(test.size)},
        training=training,
        metrics=metrics,
        probs=probs,
        returns=returns,
        returns_ungated=returns_all,
        test_ends=test,
        result=result,
        backtest=backtest,
        backtest_returns=backtest_returns,
    )


def folds_for(windows: WindowSet, config: WalkForwardConfig) -> tuple[list[Fold], np.ndarray]:
    grid = timestamp_grid(windows)
    purge = config.purge if config.purge is not None else windows.lookback + config.horizon
    embargo = config.embargo if config.embargo is not None else config.horizon
    if purge < windows.lookback + config.horizon:
        raise InputError(
            f"purge={purge}: must be >= lookback + horizon = {windows.lookback + config.horizon}"
        )
    min_block = max(50, 2 * windows.lookback)
    folds = make_folds(
        grid.size,
        config.n_folds,
        purge=purge,
        embargo=embargo,
        scheme=config.scheme,  # type: ignore[arg-type]
        min_block=min_block,
    )
    return folds, grid


def run_walkforward(
    windows: WindowSet,
    config: WalkForwardConfig,
    *,
    oracle: Oracle | None = None,
    label_settings: dict[str, Any] | None = None,
    feature_spec: dict[str, Any] | None = None,
    data_info: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    bars: Mapping[str, pd.DataFrame] | None = None,
    risk: RiskSettings | None = None,
    costs: CostSettings | None = None,
) -> WalkForwardResult:
    """Every fold in turn; ``bars`` (the raw bars by symbol) adds the event-driven backtest
    of the predictors named in ``config.event_backtest``."""
    t0 = time.perf_counter()
    folds, grid = folds_for(windows, config)
    outcomes = []
    for fold in folds:
        if progress:
            progress(f"fold {fold.index + 1}/{len(folds)}: training")
        outcome = run_fold(
            windows,
            fold,
            grid,
            config,
            oracle,
            label_settings,
            feature_spec,
            bars=bars,
            risk=risk,
            costs=costs,
        )
        outcomes.append(outcome)
        if progress:
            m = outcome.metrics
            progress(
                f"fold {fold.index + 1}/{len(folds)}: dacc model={m['model']['dacc']:.4f} "
                + " ".join(f"{k}={v['dacc']:.4f}" for k, v in m.items() if k != "model")
            )
    pooled = pool(windows, outcomes, config)
    significance = assess(pooled, outcomes)
    info = {
        "symbols": windows.symbols,
        "n_rows": int(windows.X.shape[0]),
        "n_features": windows.n_features,
        "start": _iso(int(grid[0])),
        "end": _iso(int(grid[-1])),
        **(data_info or {}),
    }
    backtest = {
        name: pooled_backtest(
            [o.backtest[name] for o in outcomes],
            [o.backtest_returns[name] for o in outcomes],
            AssetClass(config.asset_class),
        )
        for name in config.event_backtest
        if outcomes and all(name in o.backtest for o in outcomes)
    }
    return WalkForwardResult(
        config, outcomes, pooled, significance, info, time.perf_counter() - t0, backtest
    )


def pool(
    windows: WindowSet, outcomes: list[FoldOutcome], config: WalkForwardConfig
) -> dict[str, dict[str, Any]]:
    """Metrics on all test bars of all folds together, plus fold mean and standard error."""
    names = [n for n in outcomes[0].probs if all(n in o.probs for o in outcomes)]
    ends = np.concatenate([o.test_ends for o in outcomes])
    y, r = windows.y[ends], windows.r[ends]
    bpy = BARS_PER_YEAR[AssetClass(config.asset_class)]
    pooled = {}
    for name in names:
        p = np.concatenate([o.probs[name] for o in outcomes])
        m = classification_metrics(p, y, r, config.gate)
        rets = pd.concat([o.returns[name] for o in outcomes]).sort_index()
        m.update(performance(rets.to_numpy(), bpy))
        all_rets = pd.concat([o.returns_ungated[name] for o in outcomes]).sort_index()
        m.update(_suffixed(performance(all_rets.to_numpy(), bpy), "_ungated"))
        m["per_period_sharpe_ungated"] = per_period_sharpe(all_rets.to_numpy())
        m["dacc_se"] = dacc_standard_error(m["dacc"], m["n_directional"])
        m["dacc_fold_mean"] = summarize_fold_values([o.metrics[name]["dacc"] for o in outcomes])
        if len(windows.series) > 1:
            tick = windows.ticker[ends]
            m["dacc_by_symbol"] = {
                sym: dacc(p[tick == i, 0], p[tick == i, 1], r[tick == i])
                for i, sym in enumerate(windows.symbols)
            }
        pooled[name] = m
    return pooled


def _suffixed(d: dict[str, Any], suffix: str) -> dict[str, Any]:
    return {k + suffix: v for k, v in d.items() if k != "n_periods"}


def pooled_returns(outcomes: list[FoldOutcome], name: str = "model") -> np.ndarray:
    """The ungated strategy's net returns over all test folds, in time order."""
    return pd.concat([o.returns_ungated[name] for o in outcomes]).sort_index().to_numpy()


def assess(pooled: dict[str, dict[str, Any]], outcomes: list[FoldOutcome]) -> dict[str, Any]:
    """Binomial tests of the model's DACC vs 50% and vs the best baseline; DSR of the ungated
    strategy (it trades every UP/DOWN call, so every predictor has a return series) over the
    predictors compared here (the sweep recomputes it over all its configurations)."""
    model = pooled["model"]
    n = model["n_directional"]
    hits = round(model["dacc"] * n)
    base = {k: v["dacc"] for k, v in pooled.items() if k in BASELINES and np.isfinite(v["dacc"])}
    best_name = max(base, key=lambda k: base[k]) if base else None
    rets = pooled_returns(outcomes, "model")
    trial_sharpes = [v["per_period_sharpe_ungated"] for k, v in pooled.items() if k != "oracle"]
    return {
        "n_directional": n,
        "p_value_vs_50": binomial_vs(hits, n, 0.5),
        "best_baseline": best_name,
        "best_baseline_dacc": base.get(best_name) if best_name else None,
        "p_value_vs_best_baseline": (
            binomial_vs(hits, n, min(max(base[best_name], 1e-6), 1 - 1e-6)) if best_name else None
        ),
        "deflated_sharpe": deflated_sharpe(rets, trial_sharpes),
    }
