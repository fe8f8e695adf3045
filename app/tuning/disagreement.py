"""Where two predictors differ: DACC per volatility regime and per hour, and who is right when
their directional calls disagree.

Issue 13 asks for evidence where the network loses to a baseline on real data. The pooled test
bars of a walk-forward are split three ways, each on information known at the decision bar:
- by volatility: terciles of the label threshold ``theta`` (max(2 bps, 0.25 x past sigma), a
  function of past returns only), cut on the pooled test bars;
- by hour of day (UTC), in four-hour blocks;
- by agreement: bars where both call the same direction, and bars where they do not, with the
  share of the latter each predictor gets right (they sum to one: on a directional bar exactly
  one of two opposite calls is right).

DACC is ``app.labels.dacc``'s: the call is UP when P(UP) > P(DOWN), a tie is DOWN; every bar with
a finite, non-zero next return counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.labels import DOWN, UP
from app.models.dataset import WindowSet
from app.tuning.walkforward import WalkForwardResult

HOUR_BLOCK = 4


@dataclass(frozen=True)
class PooledCalls:
    """The pooled test bars of a walk-forward: each predictor's call and what happened."""

    up: dict[str, np.ndarray]  # predictor -> (n,) bool: the call is UP
    r: np.ndarray  # (n,) the next return
    theta: np.ndarray  # (n,) the label threshold (past volatility)
    hour: np.ndarray  # (n,) UTC hour of the decision bar

    @classmethod
    def from_result(cls, result: WalkForwardResult, windows: WindowSet) -> PooledCalls:
        names = set.intersection(*(set(f.probs) for f in result.folds))
        ends = np.concatenate([f.test_ends for f in result.folds])
        up = {
            name: np.concatenate(
                [f.probs[name][:, UP] > f.probs[name][:, DOWN] for f in result.folds]
            )
            for name in sorted(names)
        }
        hours = (windows.ts[ends] // 3_600_000_000_000) % 24  # ns since the epoch, UTC
        return cls(up=up, r=windows.r[ends], theta=windows.theta[ends], hour=hours)


def _score(right: np.ndarray) -> dict[str, Any]:
    n = int(right.size)
    if n == 0:
        return {"n": 0, "dacc": None, "se": None}
    p = float(right.mean())
    return {"n": n, "dacc": round(p, 4), "se": round(float(np.sqrt(p * (1 - p) / n)), 4)}


def compare(calls: PooledCalls, a: str, b: str) -> dict[str, Any]:
    """Predictor ``a`` against ``b`` on the same directional test bars (see the module doc)."""
    for name in (a, b):
        if name not in calls.up:
            raise KeyError(f"predictor={name!r}: not in this walk-forward ({sorted(calls.up)})")
    eligible = np.isfinite(calls.r) & (calls.r != 0)
    went_up = calls.r[eligible] > 0
    right = {name: calls.up[name][eligible] == went_up for name in (a, b)}
    theta, hour = calls.theta[eligible], calls.hour[eligible]
    cuts = np.quantile(theta, [1 / 3, 2 / 3]) if theta.size else np.array([0.0, 0.0])
    regime = np.digitize(theta, cuts)  # 0 calm, 1 middle, 2 volatile
    differ = calls.up[a][eligible] != calls.up[b][eligible]

    def split(mask: np.ndarray) -> dict[str, Any]:
        return {name: _score(right[name][mask]) for name in (a, b)}

    return {
        "a": a,
        "b": b,
        "overall": split(np.ones_like(differ)),
        "volatility_terciles": {
            label: {**split(regime == k), "theta_bps_max": _bps(theta[regime == k])}
            for k, label in enumerate(("calm", "middle", "volatile"))
        },
        "hour_utc": {
            f"{h:02d}-{h + HOUR_BLOCK:02d}": split((hour >= h) & (hour < h + HOUR_BLOCK))
            for h in range(0, 24, HOUR_BLOCK)
        },
        "disagree_share": round(float(differ.mean()), 4) if differ.size else None,
        "when_they_disagree": split(differ),
        "when_they_agree": split(~differ),
    }


def _bps(theta: np.ndarray) -> float | None:
    return round(float(theta.max()) * 1e4, 2) if theta.size else None


def markdown(comparison: dict[str, Any]) -> str:
    """The comparison as the tables RESULTS.md carries."""
    a, b = comparison["a"], comparison["b"]
    rows = [f"| bars | n | {a} | {b} |", "|---|---|---|---|"]

    def row(label: str, cell: dict[str, Any]) -> str:
        fa, fb = cell[a], cell[b]
        return f"| {label} | {fa['n']:,} | {_fmt(fa)} | {_fmt(fb)} |"

    rows.append(row("all", comparison["overall"]))
    for label, cell in comparison["volatility_terciles"].items():
        rows.append(row(f"{label} (theta <= {cell['theta_bps_max']} bps)", cell))
    for label, cell in comparison["hour_utc"].items():
        rows.append(row(f"{label} UTC", cell))
    rows.append(row("both call the same direction", comparison["when_they_agree"]))
    rows.append(
        row(f"they disagree ({comparison['disagree_share']:.1%})", comparison["when_they_disagree"])
    )
    return "\n".join(rows) + "\n"


def _fmt(cell: dict[str, Any]) -> str:
    return "–" if cell["dacc"] is None else f"{cell['dacc']:.4f} ± {cell['se']:.4f}"


def write_disagreement(
    result: WalkForwardResult, windows: WindowSet, out_dir: str | Path
) -> dict[str, Any] | None:
    """``disagreement.json`` / ``.md``: the model against the best baseline of this
    walk-forward (None when either is missing, e.g. no fold ran)."""
    best = result.significance.get("best_baseline") if result.significance else None
    if not result.folds or not best:
        return None
    calls = PooledCalls.from_result(result, windows)
    if "model" not in calls.up or best not in calls.up:
        return None
    comparison = compare(calls, "model", best)
    out = Path(out_dir)
    (out / "disagreement.json").write_text(json.dumps(comparison, indent=2) + "\n")
    (out / "disagreement.md").write_text(markdown(comparison))
    return comparison
