"""Models and research: registry versions with their walk-forward figures, baselines, oracle.

The registry records what the walk-forward measured (``metrics.pooled`` for the model on the
test folds; ``baselines`` and ``oracle_dacc`` where the run recorded them). A figure the
version did not record shows as a dash, never as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ui.views.fmt import DASH, num, pct

Json = dict[str, Any]


def _model_metrics(metrics: Json) -> Json:
    for key in ("pooled", "test"):
        if isinstance(metrics.get(key), dict):
            return metrics[key]
    return metrics


def walkforward_figures(model: Json) -> dict[str, float | None]:
    """DACC, selective DACC, Sharpe, max drawdown of the model; DACC of baselines and oracle."""
    metrics = model.get("metrics") or {}
    m = _model_metrics(metrics)
    out: dict[str, float | None] = {
        "dacc": _f(m.get("dacc", metrics.get("val_dacc"))),
        "selective_dacc": _f(m.get("selective_dacc")),
        "sharpe": _f(m.get("sharpe")),
        "max_drawdown": _f(m.get("max_drawdown")),
    }
    baselines = metrics.get("baselines") or {}
    for name, value in baselines.items():
        out[f"baseline:{name}"] = _f(value.get("dacc") if isinstance(value, dict) else value)
    oracle = metrics.get("oracle_dacc", (metrics.get("oracle") or {}).get("dacc"))
    out["oracle"] = _f(oracle)
    return out


def _f(v: object) -> float | None:
    try:
        return None if v is None else float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def models_frame(models: Sequence[Json]) -> pd.DataFrame:
    """One row per version, newest first; baseline and oracle DACC beside the model's."""
    figures = [walkforward_figures(m) for m in models]
    baseline_cols = sorted({k for f in figures for k in f if k.startswith("baseline:")})
    rows = []
    for m, f in zip(models, figures, strict=True):
        row = {
            "promoted": "★ serving" if m.get("promoted") else "",
            "version": m["version"],
            "kind": m.get("kind", ""),
            "created_at": m.get("created_at", ""),
            "symbols": ", ".join(m.get("symbols", [])),
            "dacc": pct(f["dacc"]),
            "selective_dacc": pct(f["selective_dacc"]),
            "sharpe": num(f["sharpe"]),
            "max_drawdown": pct(f["max_drawdown"]),
        }
        row.update({c.replace("baseline:", ""): pct(f.get(c)) for c in baseline_cols})
        row["oracle"] = pct(f["oracle"])
        rows.append(row)
    rows.reverse()
    columns = [
        "promoted",
        "version",
        "kind",
        "created_at",
        "symbols",
        "dacc",
        "selective_dacc",
        "sharpe",
        "max_drawdown",
        *(c.replace("baseline:", "") for c in baseline_cols),
        "oracle",
    ]
    return pd.DataFrame(rows, columns=columns)


def current_version(models: Sequence[Json]) -> str | None:
    for m in models:
        if m.get("promoted"):
            return str(m["version"])
    return None


def current_markdown(models: Sequence[Json]) -> str:
    version = current_version(models)
    if version is None:
        return f"**Serving:** {DASH} (no version promoted: the worker serves nothing)"
    return f"**Serving:** `{version}`"


def dacc_figure(models: Sequence[Json]) -> go.Figure:
    """Each version's DACC beside its baselines and the oracle (percent)."""
    fig = go.Figure()
    names = [m["version"] for m in models]
    figures = [walkforward_figures(m) for m in models]
    keys = ["dacc"] + sorted({k for f in figures for k in f if k.startswith("baseline:")})
    keys.append("oracle")
    for key in keys:
        ys = [None if f.get(key) is None else f[key] * 100 for f in figures]  # type: ignore[operator]
        if all(y is None for y in ys):
            continue
        label = "model" if key == "dacc" else key.replace("baseline:", "")
        fig.add_trace(go.Bar(x=names, y=ys, name=label))
    fig.add_hline(y=50, line_dash="dot", annotation_text="50%")
    fig.update_layout(
        barmode="group",
        height=360,
        yaxis_title="DACC %",
        title="Walk-forward DACC",
        margin={"l": 50, "r": 20, "t": 40, "b": 30},
    )
    return fig
