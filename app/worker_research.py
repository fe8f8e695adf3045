"""`make run`'s last step: the paper worker replaying the data the run's model never saw.

Owns the choice of the held-back stretch and the few lines a person reads at the end; the
worker itself is ``app.worker.run_live``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from app.config import Settings
from app.errors import InputError
from app.models import registry
from app.worker import LiveOptions, run_live


def held_back_start(bars, fraction: float) -> datetime:  # type: ignore[no-untyped-def]
    """The first bar time of the last ``fraction`` of the series (the held-back part)."""
    import pandas as pd

    ts = sorted(pd.concat([f["ts"] for f in bars.values()]).unique())
    return pd.Timestamp(ts[int(len(ts) * (1.0 - fraction))]).to_pydatetime()


def research_live_step(
    settings: Settings,
    sim_folder: Path,
    version: str,
    out: Path,
    *,
    duration_s: float = 60.0,
    fraction: float = 0.2,
    speed: float | None = 50.0,
    announce: Callable[[str], None] = print,
) -> dict[str, object]:
    """`make run`'s last step: promote the run's model when none is, then the paper worker on
    the data the model never saw (its walk-forward's last test window; the last ``fraction``
    of the series when the version records none) for at most ``duration_s``; returns the
    summary (``{"skipped": why}`` when the model's windows cannot be built here)."""
    asset_class = registry.version_asset_class(settings.registry_dir, version)
    if registry.promoted_version(settings.registry_dir, "price", asset_class) is None:
        registry.promote(settings.registry_dir, version)
    from app.live.replay import load_replay

    data = load_replay(sim_folder)
    start = registry.out_of_sample_start(settings.registry_dir, version)
    opts = LiveOptions(
        out=out,
        replay=(sim_folder,),
        asset_class=asset_class,
        speed=speed,
        duration_s=duration_s,
        port=0,
        panel_port=0,
        replay_from=start or held_back_start(data.bars, fraction),
        announce=announce,
    )
    try:
        return run_live(opts, settings)
    except InputError as exc:
        return {"skipped": str(exc)}


def readable(summary: dict[str, object]) -> str:
    """A few lines a person reads at the end of `make run`."""
    if "skipped" in summary:
        return f"\nPaper trading replay: skipped ({summary['skipped']})\n"
    return "\n".join(
        [
            "",
            f"Paper trading replay ({summary['stopped']}, {summary['seconds']} s, model "
            f"{summary['model_version']}):",
            f"  bars {summary['bars']}  signals {summary['signals']}  decisions "
            f"{summary['decisions']}  orders {summary['orders']}  fills {summary['fills']}",
            f"  final equity {summary['final_equity']:.2f}  risk state {summary['risk_state']}"
            f"  errors {len(summary['errors'])}",  # type: ignore[arg-type]
            f"  files: {', '.join(summary['files'].values())}",  # type: ignore[union-attr]
            *(f"  {k}: {v}" for k, v in summary.get("urls", {}).items() if k != "docs"),  # type: ignore[union-attr]
            "",
        ]
    )
