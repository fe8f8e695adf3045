"""``--retrain-every DURATION``: when to start a retrain from the live loop, and where it runs.

``RetrainHook.tick(now)`` is called once per bar close with the session clock (the replay clock
in a replay, the wall clock live), so "every 6h" means six hours of market time in both. When a
period has passed and no retrain is running, it starts one in a background thread: the store's
latest bars and the side tables the feed writes there (news, macro, flow) are read there for the
served version's feature spec (``app.pipeline.retrain.load_retrain_data``; ``before`` first
writes the feed's pending bars; the store serialises access: DuckDB has one writer, this
process, or the Serve worker's store actor) and ``app.pipeline.retrain.retrain_if_better`` runs,
as a Ray task when Ray is initialised in this process, else in the thread itself. ``tick``
never waits for it (a replay's loop may, with ``join``). A better candidate is promoted by the
retrain in the registry (the plain worker's registry check swaps it in at the next bar close),
or, given ``promote``, by that callable (the Serve worker: the ingress' promotion, the path of
``POST /v1/models/promote``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Asset, Settings
from app.errors import InputError
from app.store.base import TimeSeriesStore
from app.types import AssetClass

if TYPE_CHECKING:  # imported when a retrain starts: parsing the flag loads no torch
    from app.pipeline.retrain import RetrainOptions, RetrainResult
    from app.text.sentiment import SentimentModel

log = logging.getLogger(__name__)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_duration(text: str, flag: str = "--retrain-every") -> float:
    """``30m``, ``6h``, ``1d`` (also ``90s``, ``1.5h``) -> seconds; InputError naming ``flag``."""
    m = _DURATION.match(str(text).lower())
    if m is None:
        raise InputError(f"{flag}={text!r}: a duration like 30m, 6h or 1d (units s, m, h, d)")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not seconds > 0:
        raise InputError(f"{flag}={text!r}: must be longer than 0")
    return seconds


def _run_retrain(  # type: ignore[no-untyped-def]
    settings: Settings, data, out: Path, options: RetrainOptions, promote: bool = True
) -> RetrainResult:
    """In a Ray task when this process has Ray up, else right here."""
    from app.pipeline.retrain import retrain_if_better

    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a dependency
        ray = None
    if ray is not None and ray.is_initialized():
        task = ray.remote(num_cpus=1)(retrain_if_better)
        return ray.get(task.remote(settings, data, out, options=options, promote_candidate=promote))
    return retrain_if_better(settings, data, out, options=options, promote_candidate=promote)


class RetrainHook:
    """Starts at most one retrain at a time, every ``every_s`` seconds of the session clock."""

    def __init__(
        self,
        every_s: float,
        *,
        settings: Settings,
        store: TimeSeriesStore,
        symbols: Sequence[str],
        asset_class: AssetClass,
        out: Path,
        options: RetrainOptions | None = None,
        run: Callable[..., RetrainResult] = _run_retrain,
        before: Callable[[], None] | None = None,
        promote: Callable[[str], object] | None = None,
        assets: Sequence[Asset] | None = None,
        text_model: SentimentModel | None = None,
    ) -> None:
        from app.pipeline.retrain import RetrainOptions

        if not every_s > 0:
            raise InputError(f"--retrain-every={every_s!r}: must be > 0 seconds")
        self.every = timedelta(seconds=every_s)
        self.settings = settings
        self.store = store
        self.symbols = tuple(symbols)
        self.asset_class = AssetClass(asset_class)
        self.out = Path(out)
        self.options = options or RetrainOptions()
        self._run = run
        self.before = before  # called in tick's thread before a retrain reads the store
        self.promote = promote  # None: the retrain promotes in the registry itself
        # the headlines' tagger and scorer (None: the universe's assets, the configured model)
        self.assets = None if assets is None else tuple(assets)
        self.text_model = text_model
        self.next_at: datetime | None = None
        self.results: list[tuple[datetime, RetrainResult]] = []  # (the session time it began)
        self.errors: list[str] = []
        self._thread: threading.Thread | None = None
        self._n = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def tick(self, now: datetime) -> bool:
        """Once per bar close; True when a retrain was started."""
        if self.next_at is None:
            self.next_at = now + self.every
            return False
        if now < self.next_at or self.running:
            return False
        self.next_at = now + self.every
        self._n += 1
        out = self.out / f"retrain-{self._n:03d}"
        if self.before is not None:
            try:
                self.before()
            except Exception as exc:  # the store did not take the pending bars: no retrain
                self.errors.append(f"retrain {out.name}: writing the pending bars: {exc}")
                return False
        self._thread = threading.Thread(
            target=self._job, args=(out, now), name=f"retrain-{self._n}", daemon=True
        )
        self._thread.start()
        return True

    def _job(self, out: Path, at: datetime) -> None:
        from app.pipeline.retrain import load_retrain_data

        try:
            data = load_retrain_data(
                self.settings,
                self.store,
                self.symbols,
                self.asset_class,
                assets=self.assets,
                text_model=self.text_model,
            )
            result = self._run(self.settings, data, out, self.options, self.promote is None)
            if result.better and self.promote is not None and result.candidate is not None:
                try:
                    self.promote(result.candidate)
                    result = replace(result, promoted=True)
                except Exception as exc:  # registered, not served: said in the summary
                    self.errors.append(f"retrain {out.name}: promoting {result.candidate}: {exc}")
            self.results.append((at, result))
            log.info("retrain %s: %s", out.name, result.reason)
        except Exception as exc:  # a failed retrain never stops the trading loop
            self.errors.append(f"retrain {out.name}: {type(exc).__name__}: {exc}")
            log.warning("retrain %s failed: %s", out.name, exc)

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for a running retrain (a replay: its market clock stops meanwhile)."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def close(self, timeout_s: float = 0.0) -> None:
        """Wait up to ``timeout_s`` for a running retrain (a daemon thread: never blocks exit;
        the registry writes are atomic, so one cut short leaves no half version)."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                self.errors.append("retrain still running at stop: abandoned")

    def summary(self) -> dict[str, object]:
        return {
            "every_s": self.every.total_seconds(),
            "runs": [{**r.to_dict(), "at": at.isoformat()} for at, r in self.results],
            "errors": list(self.errors),
            "running": self.running,
        }
