"""``retrain_if_better``: a walk-forward on the latest data; promote the new model only if it beats
the one being served on the same recent folds.

The rule (docs/LIVE.md, "Retraining"): the walk-forward trains one model per fold as
``walkforward`` does; the candidate is the last fold's model (what ``walkforward --register``
registers). On the last ``compare_folds`` folds, each fold's model is scored on its own test
bars (out of sample), and the serving version on the very same windows. The candidate is
registered in every case with both figures (``metrics.json`` -> ``retrain``) and promoted only
when its figure beats the serving one by more than ``min_gain`` (``promote_candidate=False``: the
caller promotes it, as the Serve worker does through the ingress). A serving version that cannot
be scored on these windows (other features, lookback or symbols) is not replaced: the result
says why. With nothing served yet the candidate is promoted.

Plain function, no Ray: the live worker's hook (``app/pipeline/retrain_hook.py``) runs it in a
thread or as a Ray task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.config import RetrainSettings, Settings
from app.errors import InputError
from app.models.calibration import softmax
from app.models.registry import load_version, promote, promoted_version
from app.pipeline.walkforward import WalkForwardOptions, register_last_fold, run_folds
from app.tuning.data_loading import LoadedData
from app.tuning.metrics import classification_metrics
from app.tuning.report import write_report
from app.tuning.walkforward import BASELINES, bundle_logits

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
    serving = promoted_version(registry)
    result, windows = run_folds(settings, data, options.walkforward, progress=progress)
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
    if serving is not None and recent:
        bundle = load_version(registry, serving)
        why_not = _incomparable(bundle, windows)
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
    record = {
        "retrain": {
            "metric": options.metric,
            "candidate": cand_score,
            "serving": serving_score,
            "serving_version": serving,
            "folds": list(folds),
            "n_windows": int(ends.size),
            "min_gain": options.min_gain,
            "promoted": better,
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
