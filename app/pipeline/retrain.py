"""``retrain_if_better``: a walk-forward on the latest data; promote the new model only if it beats
the one being served on the same recent folds.

The rule (docs/LIVE.md, "Retraining"): the walk-forward trains one model per fold as
``walkforward`` does, on the served version's feature spec (its side columns and, when it has
them, its news-impact columns), so both models read the same columns; the candidate is the last
fold's model (what ``walkforward --register`` registers). On the last ``compare_folds`` folds,
each fold's model is scored on its own test bars (out of sample), and the serving version on the
very same windows. The candidate is registered in every case with both figures
(``metrics.json`` -> ``retrain``: ``better`` is the decision; whether it was served is the
registry's promoted pointer) and promoted only when its figure beats the serving one by more
than ``min_gain`` (``promote_candidate=False``: the caller promotes it, as the Serve worker does
through the ingress). A serving version that cannot be scored on these windows (other features,
lookback or symbols) is not replaced: the result says why. With nothing served yet the candidate
is promoted.

The data (``load_retrain_data``): the store's bars, and the side tables the live feed writes
there (``news``, ``macro``, ``flow``); headlines are scored with the live feed's text model
(``app.live.headlines``' ``score_news`` with the configured sentiment model and the registry's
head), so the training rows are the ones the feed computed. A side input the served spec reads
but the store lacks is named in the reason (its columns are neutral for both models); one its
columns cannot be built without (news-impact columns without headlines) stops the retrain
before training, with the reason.

Plain function, no Ray: the live worker's hook (``app/pipeline/retrain_hook.py``) runs it in a
thread or as a Ray task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.config import Asset, RetrainSettings, Settings
from app.errors import InputError
from app.live.replay import store_news
from app.live.window_spec import WindowSpec
from app.models.calibration import softmax
from app.models.registry import load_version, promote, promoted_version
from app.pipeline.assets import one_asset_class, store_asset_classes
from app.pipeline.backtest import store_bars
from app.pipeline.walkforward import WalkForwardOptions, register_last_fold, run_folds
from app.store.base import TimeSeriesStore
from app.tuning.data_loading import LoadedData
from app.tuning.metrics import classification_metrics
from app.tuning.report import write_report
from app.tuning.walkforward import BASELINES, bundle_logits
from app.types import AssetClass, NewsItem

if TYPE_CHECKING:  # torch and transformers load only where headlines are scored
    from app.text.sentiment import SentimentModel

METRICS = ("dacc", "accuracy", "selective_dacc")


@dataclass(frozen=True, slots=True)
class RetrainOptions:
    """How the candidate is trained and judged."""

    walkforward: WalkForwardOptions = field(default_factory=WalkForwardOptions)
    compare_folds: int = 1  # the most recent folds both models are scored on
    metric: str = "dacc"  # a key of app.tuning.metrics.classification_metrics
    min_gain: float = 0.0  # the candidate must beat the serving figure by more than this

    def __post_init__(self) -> None:
        if self.compare_folds < 1:
            raise InputError(f"compare_folds={self.compare_folds!r}: must be >= 1")
        if self.metric not in METRICS:
            raise InputError(f"metric={self.metric!r}: expected one of {METRICS}")
        if not np.isfinite(self.min_gain) or self.min_gain < 0:
            raise InputError(f"min_gain={self.min_gain!r}: must be a finite number >= 0")


def retrain_options(settings: Settings, lookback: int | None = None) -> RetrainOptions:
    """The ``[retrain]`` settings as options; ``lookback`` (the served version's) applies when
    the settings give none, so the candidate and the served model score the same windows."""
    r: RetrainSettings = settings.retrain
    walkforward = WalkForwardOptions(
        quick=r.quick,
        folds=r.folds,
        max_epochs=r.max_epochs,
        max_windows=r.max_windows,
        lookback=r.lookback or lookback,
        seed=r.seed,
        baselines=BASELINES if r.baselines is None else tuple(r.baselines),
    )
    return RetrainOptions(walkforward, r.compare_folds, r.metric, r.min_gain)


@dataclass(frozen=True, slots=True)
class RetrainResult:
    """What one retrain did; ``to_dict()`` is what the worker's summary lists."""

    candidate: str | None  # the registered new version (None: the walk-forward gave no model)
    serving: str | None  # the version served when it started
    metric: str
    candidate_score: float | None
    serving_score: float | None
    promoted: bool
    reason: str
    folds: tuple[int, ...]  # indices of the folds both were scored on
    n_windows: int
    out: Path
    better: bool = False  # the candidate beat the served version (promoted, or for the caller)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["folds"] = list(self.folds)
        return d


def serving_window(bundle: Any) -> tuple[WindowSpec | None, str | None]:
    """The served bundle's feature spec and columns, or why they cannot be rebuilt."""
    try:
        return WindowSpec.from_bundle(bundle), None
    except InputError as exc:
        return None, f"its feature spec: {exc}"


def _stored_items(store: TimeSeriesStore) -> list[NewsItem]:
    """The ``news`` table's items with text to score (``score_news`` never sees the others)."""
    return [i for i in store_news(store.read("news")) if i.title or i.body]


def _assets(settings: Settings, symbols: Sequence[str], asset_class: AssetClass) -> list[Asset]:
    """The universe's entries of ``symbols`` (names and aliases for the tagger); a symbol not
    in the universe is tagged by its ticker only."""
    known = {a.symbol: a for a in settings.universe}
    return [known.get(s) or Asset(symbol=s, asset_class=asset_class) for s in symbols]


def _headlines(
    store: TimeSeriesStore,
    symbols: Sequence[str],
    assets: Sequence[Asset],
    settings: Settings,
    text_model: SentimentModel | None,
    embed: bool,
) -> tuple[pd.DataFrame | None, np.ndarray | None]:
    """The stored headlines scored as the feed scores them (``score_news``: the same tagger and
    text model), with their embeddings when ``embed``; the model loads only if there are any."""
    items = _stored_items(store)
    if not items:
        return None, None
    from app.text.tagging import score_news

    if text_model is None:
        from app.models.text_loader import cached_sentiment_model

        text_model = cached_sentiment_model(settings.sentiment, Path(settings.registry_dir))
    scored = score_news(items, assets, text_model)
    scored = scored[scored["symbol"].isin(list(symbols))].reset_index(drop=True)
    if not len(scored):
        return None, None
    scored.attrs["sentiment_head"] = text_model.head_name
    embeddings = None
    if embed:
        text_of = {i.id: i.text for i in items}
        embeddings = text_model.embed([text_of[i] for i in scored["news_id"]])
    return scored, embeddings


def load_retrain_data(
    settings: Settings,
    store: TimeSeriesStore,
    symbols: Sequence[str],
    asset_class: AssetClass | None = None,
    *,
    registry: Path | None = None,
    assets: Sequence[Asset] | None = None,
    text_model: SentimentModel | None = None,
) -> LoadedData:
    """The store's bars of ``symbols`` and its ``news`` / ``macro`` / ``flow`` tables (what the
    live feed writes), for the served version's spec: headlines scored by the feed's text
    model (``text_model``, default the configured one with the registry's head; ``assets``,
    default the universe's, tag them), with embeddings when its columns include news impact."""
    if not symbols:
        raise InputError("symbols: none given for the retrain")
    registry = Path(registry or settings.registry_dir)
    given = dict.fromkeys(symbols, asset_class) if asset_class else {}
    cls = one_asset_class(store_asset_classes(store, symbols, given, settings))
    serving = promoted_version(registry, "price", cls)  # the version this class serves
    window = serving_window(load_version(registry, serving))[0] if serving else None
    bars = store_bars(store, symbols)
    embed = window is not None and window.impact_columns
    assets = list(assets) if assets is not None else _assets(settings, symbols, cls)
    news, embeddings = _headlines(store, symbols, assets, settings, text_model, embed)
    macro = store.read("macro")
    flow = store.read("flow")
    flow = flow[flow["symbol"].isin(list(symbols))] if len(flow) else flow
    return LoadedData(
        cls,
        bars,
        news=news,
        news_embeddings=embeddings,
        macro=macro if len(macro) else None,
        flow=flow.reset_index(drop=True) if len(flow) else None,
        source=f"store:{store.url}",
    )


def side_gaps(window: WindowSpec, data: LoadedData) -> tuple[str | None, tuple[str, ...]]:
    """(why the served columns cannot be built from ``data``, or None; the side inputs its spec
    reads that ``data`` lacks, whose columns are then neutral for both models)."""
    spec, symbols = window.spec, list(data.bars)
    with_news = set() if data.news is None else set(data.news["symbol"])
    missing = []
    no_news = [s for s in symbols if s not in with_news]
    if no_news:
        missing.append(f"headlines (news) for {no_news}")
    series = set() if data.macro is None else set(data.macro["symbol"])
    missing += [
        f"macro series {name!r}"
        for name in (spec.fear_greed_series, spec.implied_vol_series)
        if name and name not in series
    ]
    kinds = set() if data.flow is None else set(data.flow["kind"])
    if spec.flow_kinds - kinds:
        missing.append(f"flow kinds {sorted(spec.flow_kinds - kinds)}")
    blocker = None
    if window.impact_columns and (data.news is None or data.news_embeddings is None):
        what = "no scored headlines" if data.news is None else "no headline embeddings"
        blocker = (
            f"its news-impact columns need headlines with their text, and the data has {what} "
            f"for {symbols} ({data.source or 'no source'}: news table empty or untagged)"
        )
    return blocker, tuple(missing)


def _score(metric: str, probs: np.ndarray, y: np.ndarray, r: np.ndarray, gate: float) -> float:
    return float(classification_metrics(probs, y, r, gate)[metric])


def _incomparable(bundle: Any, windows: Any) -> str | None:
    """Why ``bundle`` cannot be scored on ``windows`` (None: it can)."""
    names = tuple(windows.series[0].feature_names) if windows.series else ()
    if tuple(bundle.feature_names) != names:
        return "its feature columns differ from the retrain's"
    if int(bundle.lookback) != int(windows.lookback):
        return f"its lookback {bundle.lookback} differs from the retrain's {windows.lookback}"
    if tuple(bundle.symbols) != tuple(windows.symbols):
        return f"its symbols {list(bundle.symbols)} differ from the retrain's {windows.symbols}"
    return None


def retrain_if_better(
    settings: Settings,
    data: LoadedData,
    out: Path,
    *,
    options: RetrainOptions | None = None,
    registry: Path | None = None,
    progress: Callable[[str], None] | None = None,
    promote_candidate: bool = True,
) -> RetrainResult:
    """Walk-forward on ``data``; register the candidate; promote it only if it beats the
    serving version on the same recent folds (``promote_candidate=False``: leave that to the
    caller; ``better`` says whether to). Writes the walk-forward report into ``out``."""
    options = options or RetrainOptions()
    registry = Path(registry or settings.registry_dir)
    serving = promoted_version(registry, "price", data.asset_class)  # this class's served one
    bundle = load_version(registry, serving) if serving is not None else None
    window, why_spec = serving_window(bundle) if bundle is not None else (None, None)
    blocker, missing = side_gaps(window, data) if window is not None else (None, ())
    if blocker is not None:  # its columns cannot be built: nothing to train or compare
        reason = f"serving {serving} cannot be retrained on this data: {blocker}"
        return RetrainResult(None, serving, options.metric, None, None, False, reason, (), 0,
                             Path(out))  # fmt: skip
    spec = window.spec if window is not None else None  # nothing served: the default spec
    result, windows = run_folds(settings, data, options.walkforward, progress=progress, spec=spec)
    out = Path(out)
    write_report(result, out)
    recent = result.folds[-options.compare_folds :]
    gate = result.config.gate
    ends = np.concatenate([f.test_ends for f in recent]) if recent else np.zeros(0, int)
    y, r = windows.y[ends], windows.r[ends]
    folds = tuple(int(f.fold.index) for f in recent)
    cand_score = None
    if recent:
        probs = np.concatenate([f.probs["model"] for f in recent])
        cand_score = _score(options.metric, probs, y, r, gate)
    serving_score, why_not = None, None
    if bundle is not None and recent:
        why_not = why_spec or _incomparable(bundle, windows)
        if why_not is None:
            p_serving = softmax(bundle_logits(bundle, windows, ends), bundle.temperature)
            serving_score = _score(options.metric, p_serving, y, r, gate)
    if cand_score is None or not np.isfinite(cand_score):
        better, reason = False, "the walk-forward gave no scorable model"
    elif serving is None:
        better, reason = True, "no version was served"
    elif why_not is not None:
        better, reason = False, f"serving {serving} cannot be scored on these folds: {why_not}"
    elif serving_score is None or not np.isfinite(serving_score):
        better, reason = True, f"serving {serving} has no finite {options.metric} here"
    else:
        better = cand_score > serving_score + options.min_gain
        verb = "beats" if better else "does not beat"
        reason = (
            f"{options.metric} {cand_score:.4f} {verb} serving {serving}'s {serving_score:.4f}"
            + (f" by more than {options.min_gain}" if options.min_gain else "")
        )
    if missing:
        reason += f"; the data lacks {', '.join(missing)} (neutral columns for both)"
    record = {
        "retrain": {
            "metric": options.metric,
            "candidate": cand_score,
            "serving": serving_score,
            "serving_version": serving,
            "folds": list(folds),
            "n_windows": int(ends.size),
            "min_gain": options.min_gain,
            # the decision; whether it was served is the promoted pointer's to say (the
            # caller may promote later, or fail to)
            "better": better,
            "reason": reason,
        }
    }
    candidate = register_last_fold(registry, result, data, extra_metrics=record)
    better = bool(better and candidate is not None)
    promoted = better and promote_candidate
    if promoted:
        promote(registry, candidate)  # the worker swaps it in at its next bar close
    return RetrainResult(
        candidate=candidate,
        serving=serving,
        metric=options.metric,
        candidate_score=cand_score,
        serving_score=serving_score,
        promoted=promoted,
        reason=reason,
        folds=folds,
        n_windows=int(ends.size),
        out=out,
        better=better,
    )
