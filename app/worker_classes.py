"""Which asset classes the worker on Ray trades, and how their apps are named and summed.

A price model is trained for one asset class, and each class trades as its own account (one
feed actor, one Serve app: ingress, Model, Risk, execution actor); ``app/worker_serve.py`` runs
the graphs this module plans. Plain code: tested without Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from app.config import Settings
from app.errors import InputError
from app.live.model import SignalModel
from app.models import registry
from app.types import AssetClass
from app.worker import LiveOptions, _replay_start

APP_NAME = "signal"


@dataclass(frozen=True)
class ClassGraph:
    """One asset class's account: its promoted model, tickers, feed actor and Serve app (one
    ingress, Model, Risk and execution actor per class). With one class the app is ``signal``
    on ``/`` writing into ``--out``; with several, ``signal-<class>`` on ``/<class>`` writing
    into ``--out/<class>``."""

    asset_class: AssetClass
    model: Any  # SignalModel
    symbols: tuple[str, ...]
    start: datetime | None  # the replay's first bar (None: the wall clock, a venue)
    trade_from: datetime | None
    app_name: str = APP_NAME
    route_prefix: str = "/"
    out: Path = Path(".")

    def placed(self, out: Path, several: bool) -> ClassGraph:
        if not several:
            return replace(self, out=out)
        cls = self.asset_class.value
        return replace(self, app_name=f"{APP_NAME}-{cls}", route_prefix=f"/{cls}", out=out / cls)

    @property
    def classes(self) -> dict[str, AssetClass]:
        return {s: self.asset_class for s in self.symbols}


def replay_graphs(opts: LiveOptions, settings: Settings) -> list[ClassGraph]:
    """One graph per asset class of the recording with a promoted model (``--asset-class``:
    that class only; exit 2 when no class has one)."""
    from app.live.replay import load_replay

    if len(opts.replay) != 1:
        raise InputError(f"--replay: one file, folder or simulator folder, got {opts.replay}")
    data = load_replay(opts.replay[0], opts.asset_class)
    wanted = [AssetClass(opts.asset_class)] if opts.asset_class else list(data.classes)
    served = registry.promoted_versions(settings.registry_dir)
    legacy = registry.promoted_version(settings.registry_dir)
    if legacy is not None and not served and len(wanted) == 1:
        served = {wanted[0]: legacy}  # a version with no class recorded: as before
    traded = [AssetClass(c) for c in wanted if AssetClass(c) in served]
    if not traded:
        names = ", ".join(AssetClass(c).value for c in wanted)
        raise InputError(
            f"no promoted model for {names} in {settings.registry_dir}: run `make run` (or "
            "walkforward, then `python -m app models promote VERSION`) first"
        )
    graphs = []
    for cls in traded:
        symbols = tuple(data.symbols(cls))
        start = _replay_start({s: data.bars[s] for s in symbols}, opts.replay_from)
        model = SignalModel.load(settings.registry_dir, served[cls])
        graphs.append(ClassGraph(cls, model, symbols, start, start))
    return graphs


def api_urls(port: int, graphs: list[ClassGraph]) -> dict[str, str]:
    base = f"http://127.0.0.1:{port}"
    if len(graphs) == 1:
        return {"api": base, "docs": base + "/docs"}
    urls = {"api": base}
    for g in graphs:
        urls[f"api_{g.asset_class.value}"] = base + g.route_prefix
        urls[f"docs_{g.asset_class.value}"] = base + g.route_prefix + "/docs"
    return urls


def combined_summary(
    parts: dict[str, dict], opts: LiveOptions, urls, seconds: float
) -> dict[str, object]:  # type: ignore[no-untyped-def]  # noqa: E501
    """The JSON summary: one class's as it is; several classes' totals (their accounts are
    separate: ``final_equity`` is the sum) with each class's under ``classes``."""
    if len(parts) == 1:
        [part] = parts.values()
        return {"stopped": part.pop("stopped"), **part, "seconds": seconds, "urls": urls}
    counts = ("bars", "signals", "decisions", "orders", "fills", "final_equity")
    totals = {k: sum(p[k] for p in parts.values()) for k in counts}
    stopped = {p["stopped"] for p in parts.values()}
    return {
        "stopped": stopped.pop() if len(stopped) == 1 else "mixed",
        "model_version": {c: p["model_version"] for c, p in parts.items()},
        "venue": opts.venue,
        "address": opts.address,
        **totals,
        "risk_state": {c: p["risk_state"] for c, p in parts.items()},
        "errors": [f"{c}: {e}" for c, p in parts.items() for e in p["errors"]],
        "seconds": seconds,
        "urls": urls,
        "classes": parts,
    }
