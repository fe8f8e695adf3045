"""``walk_forward``: walk-forward evaluation of a model against baselines (and an oracle).

Takes loaded data (``LoadedData`` from files, a simulator folder or the store), trains one
model per fold, writes ``report.json``, ``report.md`` and the out-of-sample ``signals.csv``
into ``out``, and registers the last fold's model when asked. ``load_walkforward_data``
reads a store (asset class from its ``symbols`` table) or ``--data`` paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.config import Settings
from app.errors import InputError
from app.features.spec import FeatureSpec, default_spec
from app.models.dataset import WindowSet
from app.models.registry import save_version
from app.pipeline.assets import one_asset_class, store_asset_classes
from app.store import TimeSeriesStore
from app.tuning.data_loading import LoadedData, build_windows, load_data, load_store
from app.tuning.disagreement import write_disagreement
from app.tuning.presets import QUICK, STANDARD
from app.tuning.report import write_report, write_signals
from app.tuning.walkforward import (
    BASELINES,
    Oracle,
    WalkForwardConfig,
    WalkForwardResult,
    run_walkforward,
)
from app.types import AssetClass


@dataclass(frozen=True, slots=True)
class WalkForwardOptions:
    """Model and fold settings; None means the preset's (or the settings') value."""

    model: str | None = None
    folds: int | None = None
    scheme: str = "expanding"
    max_epochs: int | None = None
    max_windows: int | None = None
    lookback: int | None = None
    d_model: int | None = None
    layers: int | None = None
    heads: int | None = None
    quick: bool = False
    baselines: tuple[str, ...] = BASELINES
    device: str | None = None
    seed: int = 0
    ensemble: int | None = None  # seed-ensemble size (None: the preset's)
    stop_on: str | None = None  # early stopping on "loss" or "dacc" (None: the preset's)


@dataclass(frozen=True, slots=True)
class WalkForwardJobResult:
    """The report summary, the signals file and the registered version, if any."""

    report: Mapping[str, Any]  # app.tuning.report.summary: dacc, baselines, oracle_dacc, ...
    signals: Path
    version: str | None = None

    @property
    def dacc(self) -> float | None:
        return self.report.get("dacc")

    def to_dict(self) -> dict[str, Any]:
        out = {**self.report, "signals": str(self.signals)}
        if self.version is not None:
            out["version"] = self.version
        return out


def _override(obj: Any, **changes: Any) -> Any:
    return replace(obj, **{k: v for k, v in changes.items() if v is not None})


def build_config(
    settings: Settings, options: WalkForwardOptions, asset_class: AssetClass
) -> WalkForwardConfig:
    preset = QUICK if options.quick else STANDARD
    spec = _override(
        preset.spec,
        kind=options.model or settings.model.kind,
        lookback=options.lookback or (None if options.quick else settings.model.lookback),
        d_model=options.d_model,
        n_layers=options.layers,
        n_heads=options.heads,
    )
    train = _override(
        preset.train,
        max_epochs=options.max_epochs,
        max_windows_per_epoch=options.max_windows,
        seed=options.seed,
        ensemble=options.ensemble,
        stop_on=options.stop_on,
    )
    costs = settings.costs
    return WalkForwardConfig(
        asset_class=asset_class,
        spec=spec,
        train=train,
        n_folds=options.folds or preset.folds,
        scheme=options.scheme,
        horizon=settings.labels.horizon,
        gate=settings.risk.confidence_gate,
        cost_bps=costs.fee_bps[asset_class] + costs.slippage_bps,
        baselines=tuple(options.baselines),
        device=options.device or settings.model.device,
        seed=options.seed,
    )


def load_walkforward_data(
    settings: Settings,
    *,
    store: TimeSeriesStore | None = None,
    paths: Sequence[str | Path] = (),
    symbols: Sequence[str] = (),
    asset_class: AssetClass | None = None,
    news: bool = True,
    news_impact: bool = True,
) -> LoadedData:
    """From a store (its recorded asset class; ``asset_class`` must agree) or from paths."""
    if store is not None:
        if not symbols:
            raise InputError("--symbols is required with --store")
        given = dict.fromkeys(symbols, asset_class) if asset_class else {}
        cls = one_asset_class(store_asset_classes(store, symbols, given, settings))
        return load_store(store, symbols, cls, news_impact=news_impact, settings=settings)
    return load_data(
        paths, symbols, asset_class, news=news, news_impact=news_impact, settings=settings
    )


def sim_oracle(folder: Path, symbols: Sequence[str]) -> Oracle:
    """The simulator's oracle for ``symbols`` from its folder (the store does not hold it)."""
    from app.sim.files import load_simulation

    result = load_simulation(folder)
    missing = [s for s in symbols if s not in result.oracle]
    if missing:
        raise InputError(f"{folder}: no oracle for symbols {missing}")
    return Oracle(
        frames={s: result.oracle[s] for s in symbols},
        df=result.manifest.oracle.df,
    )


def run_folds(
    settings: Settings,
    data: LoadedData,
    options: WalkForwardOptions,
    *,
    progress: Callable[[str], None] | None = None,
    spec: FeatureSpec | None = None,
) -> tuple[WalkForwardResult, WindowSet]:
    """Train and score every fold (no files); the windows are what the folds index.
    ``spec``: the features to build (default: the asset class's; a retrain passes the served
    version's, so both models read the same columns)."""
    config = build_config(settings, options, data.asset_class)
    spec = spec or default_spec(data.asset_class)
    windows = build_windows(data, spec, settings.labels, config.spec.lookback)
    result = run_walkforward(
        windows,
        config,
        oracle=data.oracle,
        label_settings=settings.labels.model_dump(),
        feature_spec=spec.to_dict(),
        data_info=data.describe(),
        progress=progress,
        bars=data.bars,
        risk=settings.risk,
        costs=settings.costs,
    )
    return result, windows


def register_last_fold(
    registry: Path,
    result: WalkForwardResult,
    data: LoadedData,
    extra_metrics: Mapping[str, Any] | None = None,
) -> str | None:
    """Save the last fold's model as a new version (None when there is none)."""
    if result.last_model is None:
        return None
    last = result.folds[-1]
    return save_version(
        registry,
        result.last_model.bundle,
        metrics={
            "test": last.metrics["model"],
            "pooled": result.pooled["model"],
            "training": last.training,
            **(extra_metrics or {}),
        },
        data_range={
            "train": last.times["train"],
            "val": last.times["val"],
            "test": last.times["test"],
            "source": data.source,
        },
    )


def walk_forward(
    settings: Settings,
    data: LoadedData,
    options: WalkForwardOptions,
    out: Path,
    *,
    register: bool = False,
    registry: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> WalkForwardJobResult:
    """Train and score every fold; write the reports and signals; register when asked."""
    result, windows = run_folds(settings, data, options, progress=progress)
    report = write_report(result, out)
    signals = write_signals(result, windows, Path(out) / "signals.csv")
    write_disagreement(result, windows, out)  # the model vs the best baseline, per regime
    version = None
    if register:
        version = register_last_fold(registry or settings.registry_dir, result, data)
    return WalkForwardJobResult(report=report, signals=signals, version=version)
