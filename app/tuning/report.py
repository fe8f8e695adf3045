"""Walk-forward report: report.json (everything) and report.md (tables a human reads)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from app.models.dataset import WindowSet
from app.tuning.walkforward import BASELINES, WalkForwardResult

_COLS = (
    "dacc",
    "accuracy",
    "selective_dacc",
    "coverage",
    "log_loss",
    "ece",
    "sharpe",
    "max_drawdown",
    "total_return",
    "sharpe_ungated",
    "total_return_ungated",
)


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, str):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def report_dict(result: WalkForwardResult) -> dict[str, Any]:
    return _clean(
        {
            "config": result.config.to_dict(),
            "data": result.data,
            "seconds": result.seconds,
            "folds": [
                {
                    "index": o.fold.index,
                    "times": o.times,
                    "counts": o.counts,
                    "training": o.training,
                    "metrics": o.metrics,
                    "backtest": o.backtest,
                }
                for o in result.folds
            ],
            "pooled": result.pooled,
            "backtest": result.backtest,
            "significance": result.significance,
            "metric_notes": {
                "strategy": "vectorized next-bar-open fills, unit notional, costs = "
                f"{result.config.cost_bps} bps per unit turnover (app/tuning/metrics.py)",
                "selective": f"bars with top class UP/DOWN at confidence >= {result.config.gate}",
                "ungated": "the same strategy trading every UP/DOWN top-class call (gate 0)",
                "backtest": "event-driven app/backtest engine on the test blocks: risk engine "
                "(gate, ATR stop/take-profit, sizing, limits, daily halt), next-open fills, fees",
            },
        }
    )


def summary(result: WalkForwardResult, out_dir: Path | None = None) -> dict[str, Any]:
    """The one-line JSON the CLI prints last."""
    p = result.pooled
    model = p["model"]
    return _clean(
        {
            "dacc": model["dacc"],
            "dacc_se": model["dacc_se"],
            "baselines": {b: p[b]["dacc"] if b in p else None for b in BASELINES},
            "oracle_dacc": p["oracle"]["dacc"] if "oracle" in p else None,
            "oracle_log_loss": p["oracle"]["log_loss"] if "oracle" in p else None,
            "log_loss": model["log_loss"],
            "ece": model["ece"],
            "selective_dacc": model["selective_dacc"],
            "coverage": model["coverage"],
            "sharpe": model["sharpe"],
            "max_drawdown": model["max_drawdown"],
            "total_return": model["total_return"],
            "sharpe_ungated": model["sharpe_ungated"],
            "total_return_ungated": model["total_return_ungated"],
            "backtest": result.backtest.get("model"),
            "p_value_vs_50": result.significance["p_value_vs_50"],
            "p_value_vs_best_baseline": result.significance["p_value_vs_best_baseline"],
            "folds": len(result.folds),
            "seconds": round(result.seconds, 1),
            "report": str(out_dir / "report.md") if out_dir else None,
        }
    )


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| predictor | " + " | ".join(_COLS) + " |", "|---" * (len(_COLS) + 1) + "|"]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(c)) for c in _COLS) + " |")
    return lines


def _backtest_table(backtest: dict[str, dict[str, Any]]) -> list[str]:
    if not backtest:
        return []
    cols = ("sharpe", "max_drawdown", "total_return", "n_trades", "fees_paid", "halted_bars")
    lines = [
        "",
        "Event-driven backtest (app/backtest: risk engine, ATR stops, sizing, next-open "
        "fills, fees), folds chained:",
        "",
        "| predictor | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for name, m in backtest.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(c)) for c in cols) + " |")
    return lines


def _by_symbol(pooled: dict[str, dict[str, Any]]) -> list[str]:
    if "dacc_by_symbol" not in pooled["model"]:
        return []
    symbols = list(pooled["model"]["dacc_by_symbol"])
    lines = [
        "",
        "DACC by symbol:",
        "",
        "| predictor | " + " | ".join(symbols) + " |",
        "|---" * (len(symbols) + 1) + "|",
    ]
    for name, m in pooled.items():
        by = m.get("dacc_by_symbol", {})
        lines.append(f"| {name} | " + " | ".join(_fmt(by.get(s)) for s in symbols) + " |")
    return lines


def report_markdown(result: WalkForwardResult) -> str:
    c, d, s = result.config, result.data, result.significance
    lines = [
        "# Walk-forward report",
        "",
        f"- data: {', '.join(d['symbols'])} ({c.asset_class}), {d['start']} .. {d['end']}, "
        f"{d['n_rows']} bars, {d['n_features']} features, source {d.get('source', '?')}",
        f"- model: {c.spec.kind} lookback={c.spec.lookback} d_model={c.spec.d_model} "
        f"layers={c.spec.n_layers} heads={c.spec.n_heads} dropout={c.spec.dropout}; "
        f"{c.n_folds} {c.scheme} folds, horizon {c.horizon}, gate {c.gate}, "
        f"costs {c.cost_bps} bps/turnover",
        f"- wall time {result.seconds:.1f} s",
        "",
        "## Pooled over all test bars",
        "",
        *_table(result.pooled),
        "",
        f"DACC standard error {_fmt(result.pooled['model']['dacc_se'])} on "
        f"{s['n_directional']} directional bars. Binomial p-value vs 50%: "
        f"{_fmt(s['p_value_vs_50'])}; vs the best baseline ({s['best_baseline']}, "
        f"{_fmt(s['best_baseline_dacc'])}): {_fmt(s['p_value_vs_best_baseline'])}. "
        f"Deflated Sharpe ratio over {s['deflated_sharpe']['n_trials']} predictors: "
        f"{_fmt(s['deflated_sharpe']['dsr'])}.",
        "",
        "sharpe / max_drawdown / total_return: the strategy at the risk gate (trades only calls "
        f"with confidence >= {c.gate}); *_ungated: the same strategy trading every UP/DOWN call. "
        "Vectorized, next-bar-open fills, costs per unit turnover.",
        *_by_symbol(result.pooled),
        *_backtest_table(result.backtest),
        "",
        "## Per fold",
    ]
    for o in result.folds:
        t = o.training
        lines += [
            "",
            f"### Fold {o.fold.index}: test {o.times['test'][0]} .. {o.times['test'][1]}",
            "",
            f"train {o.counts['train']} / val {o.counts['val']} / test {o.counts['test']} "
            f"windows; epochs {t['epochs_run']} (best {t['best_epoch']}), temperature "
            f"{t['temperature']:.3f}, val ECE {t['val_ece_before']:.4f} -> "
            f"{t['val_ece_after']:.4f}, test ECE {_fmt(o.metrics['model']['ece_uncalibrated'])}"
            f" -> {_fmt(o.metrics['model']['ece'])}",
            "",
            *_table(o.metrics),
        ]
    return "\n".join(lines) + "\n"


def write_report(result: WalkForwardResult, out_dir: str | Path) -> dict[str, Any]:
    """Write report.json and report.md into ``out_dir``; return the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report_dict(result), indent=2) + "\n")
    (out / "report.md").write_text(report_markdown(result))
    return summary(result, out)


def write_signals(result: WalkForwardResult, windows: WindowSet, path: str | Path) -> Path:
    """The model's out-of-sample signals (every fold's test bars) as a backtest signals CSV.

    Columns ``ts,ticker,signal,confidence,p_up,p_down,p_flat``; ``ts`` is the bar the signal
    was computed on (its open time), so ``python -m app backtest --signals`` fills it at the
    next bar's open. Only test bars appear: no signal comes from a model that saw its bar.
    """
    from app.tuning.event_backtest import signals_frame

    frames = []
    for fold in result.folds:
        probs = fold.probs["model"]
        frame = signals_frame(windows, fold.test_ends, probs)
        frame["p_up"], frame["p_down"], frame["p_flat"] = probs[:, 0], probs[:, 1], probs[:, 2]
        frames.append(frame)
    out = Path(path)
    columns = ["ts", "ticker", "signal", "confidence", "p_up", "p_down", "p_flat"]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    table = table.sort_values(["ts", "ticker"], kind="stable")
    table["ts"] = pd.to_datetime(table["ts"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    table[columns].to_csv(out, index=False)
    return out
