"""``python -m app live``: the always-on worker, here on the plain classes (no Ray).

It loads the promoted model (none: ``InputError``, exit 2), builds the paper venue (or checks a
real one is allowed), the risk engine, the ``ExecutionEngine`` on a journal store, the
``MemoryLiveView`` and the signal API (uvicorn on 127.0.0.1) with the control panel's routes
and, unless ``--no-panel``, the panel beside it (app/serve/worker_api.py), then feeds bar closes
through the ``TradingSession`` until ``--duration``, the end of the replay, or SIGTERM / Ctrl-C.
On stop it flattens if asked, writes ``--out`` and returns the summary the CLI prints last.

A promotion (``POST /v1/models/promote`` or the registry CLI) is picked up at the next bar
close: the registry's pointer is read once per bar (a small file), the new version loaded and
swapped in before the model runs, so signals carry the new version from that bar on.
``--retrain-every`` (app/pipeline/retrain_hook.py) promotes through the registry the same way;
a replay waits for each retrain, so its promotion reaches the same bar on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from app.clock import ReplayClock, WallClock
from app.config import Settings, load_settings
from app.errors import InputError
from app.live.model import SignalModel, inference_threads
from app.live.records import write_records
from app.live.session import TradingSession
from app.live.window_spec import WindowSpec
from app.models import registry
from app.risk.engine import RiskEngine
from app.types import BAR_INTERVAL, AssetClass

VENUES = ("paper", "binance", "ib")


@dataclass(frozen=True)
class LiveOptions:
    """What the ``live`` command was asked; see app/cli/live.py for each flag."""

    out: Path
    config: Path | None = None
    venue: str = "paper"
    live: bool = False
    testnet: bool = False
    venue_url: str = ""
    feed_url: str = ""  # the live bar feed's public API URL (ccxt); "" = the exchange's own
    replay: tuple[Path, ...] = ()
    speed: float | None = None  # bars per second per ticker; None = as fast as possible
    asset_class: AssetClass | None = None
    duration_s: float | None = None
    port: int = 8000
    address: str = ""  # a Ray cluster to join (the Serve graph); "" = the plain worker
    feed_resource: str = ""  # with --address: the feed actors need this node resource
    store: str = ""  # journal store URL; default: a DuckDB file in --out
    flatten_on_exit: bool = False
    replay_from: datetime | None = None  # replay only bars from here (warm-up before it)
    serve_api: bool = True
    panel: bool = True  # the control panel beside the API (app/serve/worker_api.py)
    panel_port: int | None = None  # None: ui.port (7860); 0: a free port
    jobs_address: str = ""  # a Ray dashboard for research jobs; "" = local subprocesses
    initial_equity: float = 100_000.0
    retrain_every_s: float | None = None  # --retrain-every (app/pipeline/retrain_hook.py)
    announce: Callable[[str], None] = field(default=print, compare=False)

    def __post_init__(self) -> None:
        if self.venue not in VENUES:
            raise InputError(f"--venue={self.venue!r}: expected one of {', '.join(VENUES)}")
        if self.speed is not None and not self.speed > 0:
            raise InputError(f"--speed={self.speed!r}: a positive number of bars/s, or max")
        if self.duration_s is not None and not self.duration_s > 0:
            raise InputError(f"--duration={self.duration_s!r}: must be > 0 seconds")
        if self.retrain_every_s is not None and not self.retrain_every_s > 0:
            raise InputError(f"--retrain-every={self.retrain_every_s!r}: must be > 0 seconds")
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port={self.port!r}: expected 0-65535 (0 = any free port)")


def run_live(opts: LiveOptions, settings: Settings | None = None) -> dict[str, object]:
    """Run the worker to its end; returns the JSON summary."""
    settings = settings or (load_settings(opts.config) if opts.config else load_settings())
    with inference_threads(settings.model.inference_threads):
        return asyncio.run(_Worker(opts, settings).run())


class _Worker:
    def __init__(self, opts: LiveOptions, settings: Settings) -> None:
        self.opts = opts
        self.settings = settings
        self.stop = asyncio.Event()
        self.stop_reason = "signal"  # "duration" when a live feed's --duration timer set it
        self.errors: list[str] = []
        self.retrain = None  # the --retrain-every hook (app/pipeline/retrain_hook.py)
        self.side = _panel_side(opts, settings)
        self.side_feed = None  # the live feed's SideFeed (flow pollers), when it has one
        self._closing: list[Callable[[], None]] = []  # clients a live feed opened

    async def run(self) -> dict[str, object]:
        opts, settings = self.opts, self.settings
        if opts.address:
            raise InputError(
                f"--address={opts.address!r}: this worker runs the plain classes in one process; "
                "the Ray / Serve graph worker is app.worker_serve.run_live_serve (the CLI's "
                "`live --address` calls it)"
            )
        if opts.venue != "paper":
            _check_live_allowed(opts)
        if opts.replay:
            data, asset_class = _load(opts, settings.registry_dir)
            model = _promoted(settings.registry_dir, asset_class)
            classes = {s: asset_class for s in data.symbols(asset_class)}
            bars_from = _replay_start(data.bars, opts.replay_from)
            clock: ReplayClock | WallClock = ReplayClock(bars_from)
        else:  # the venue's bars as they close, for the tickers the model was trained on
            model = _promoted(settings.registry_dir, opts.asset_class)
            asset_class = WindowSpec.from_bundle(model.bundle).spec.asset_class
            classes = {s: asset_class for s in model.bundle.symbols}
            clock = WallClock()
            bars_from = clock.now() - 2 * BAR_INTERVAL  # the newest closed bar trades
        session, store, server = self._build(model, classes, asset_class, clock)
        urls: dict[str, str] = {}
        t0 = time.monotonic()
        try:
            if server is not None:  # first: the panel (Gradio) takes seconds to start
                urls["api"] = server.start()
                urls["docs"] = urls["api"] + "/docs"
                opts.announce(f"signal API: {urls['api']}  (OpenAPI: {urls['docs']})")
                self.side.start_panel(urls["api"])
            await session.start()
            t0 = time.monotonic()
            self._on_signals()
            if opts.replay:
                replay = _FeedReplay(data, asset_class, model, store, settings, self.side.scorer)
                self.retrain = retrain_hook(
                    opts, settings, model, store, classes, asset_class,
                    before=replay.feed.flush_store,  # the replay's bars not yet written
                )  # fmt: skip
                reason = await self._loop(session, replay.closes(), clock, bars_from)
            else:
                from app.live.venue_feeds import venue_feed

                feed = venue_feed(
                    self.settings, model, classes, store, clock, self.stop,
                    feed_url=opts.feed_url, on_error=self.errors.append,
                    on_ready=self._duration_timer,
                )  # fmt: skip
                self.side_feed, self._closing = feed.side, [*self._closing, *feed.closers]
                self.retrain = retrain_hook(opts, settings, model, store, classes, asset_class)
                reason = await self._loop(session, feed.closes, clock, bars_from, paced=False)
            if opts.flatten_on_exit:
                await self._flatten(session, clock)
        finally:
            if self.retrain is not None:
                self.retrain.close()
            with contextlib.suppress(Exception):
                await session.stop()
            urls.update(self.side.stop())
            if server is not None:
                server.stop()
            for close in self._closing:
                with contextlib.suppress(Exception):
                    close()
            store.close()
        files = write_records(session.records, session.fill_rows(), opts.out)
        rec = session.records
        summary: dict[str, object] = {
            "stopped": reason,
            "model_version": session.model.version,
            "venue": opts.venue,
            "bars": rec.bars,
            "signals": len(rec.signals),
            "decisions": len(rec.decisions),
            "orders": rec.orders,
            "fills": len(rec.fills),
            "final_equity": rec.equity[-1].equity if rec.equity else opts.initial_equity,
            "risk_state": session.risk.state.value,
            "errors": self.errors + rec.errors,
            "seconds": round(time.monotonic() - t0, 3),
            "urls": urls,
            "files": files,
        }
        if self.retrain is not None:
            summary["retrain"] = self.retrain.summary()
        if self.side_feed is not None:  # per poller: polls, items read / new, failures
            summary["side_polls"] = {
                name: {**vars(st), "rejected": dict(st.rejected)}
                for name, st in self.side_feed.stats.items()
            }
        (opts.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        return summary

    def _build(self, model, classes, asset_class, clock):  # type: ignore[no-untyped-def]
        import os

        from app.broker.execution import open_engine
        from app.serve.memory import MemoryLiveView
        from app.store import DuckDBStore, open_store

        opts, settings = self.opts, self.settings
        opts.out.mkdir(parents=True, exist_ok=True)
        risk = RiskEngine(settings.risk)
        store = open_store(opts.store) if opts.store else DuckDBStore(opts.out / "journal.db")
        execution = open_engine(
            opts.venue,
            settings,
            os.environ,
            risk,
            store,
            calendar=asset_class,
            clock=clock.now,
            live=opts.live,
            testnet=opts.testnet,
            venue_url=opts.venue_url,
            asset_classes=classes,
            state_path=opts.out / "paper_state.json",
            journal_log=opts.out / "journal.log",
            initial_cash=opts.initial_equity,
        )
        view = None
        server = None
        if opts.serve_api:
            from app.live.http import ApiServer
            from app.serve.auth import resolve_keys

            api_settings = settings.model_copy(
                update={"api": settings.api.model_copy(update={"port": opts.port})}
            )
            api_settings = resolve_keys(api_settings, announce=opts.announce)
            view = MemoryLiveView(
                clock=clock,
                engine=risk,
                registry_dir=settings.registry_dir,
                tickers=list(classes),
                api=api_settings.api,
                initial_equity=opts.initial_equity,
                calendar=asset_class,
            )
            app = self.side.api(view, api_settings, classes, clock)
            server = ApiServer(app, api_settings.api.host, opts.port)
        session = TradingSession(
            model=model,
            risk=risk,
            execution=execution,
            asset_classes=classes,
            calendar=asset_class,
            clock=clock,
            view=view,
            stale_bars=settings.api.signal_stale_bars,
            source="replay",
            fill_book=getattr(execution.broker, "pf", None),  # paper: rows with slippage
        )
        return session, store, server

    def _on_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop.set)

    async def _loop(self, session, closes, clock, bars_from, *, paced: bool = True) -> str:  # type: ignore[no-untyped-def]
        """Every bar close of ``closes`` (a replay's, or a venue's as they happen) through the
        session; a replay is paced at --speed and moves the replay clock."""
        opts = self.opts
        gap = None if opts.speed is None or not paced else 1.0 / opts.speed
        next_at = time.monotonic()
        trading_since: float | None = None  # --duration counts from the first traded bar
        async for close in closes:
            if self.stop.is_set():
                return self.stop_reason
            if close.ts < bars_from:
                continue  # the warm-up before the held-back part: features only
            trading_since = time.monotonic() if trading_since is None else trading_since
            if opts.duration_s is not None and time.monotonic() - trading_since >= opts.duration_s:
                return "duration"
            self._maybe_swap(session)
            if isinstance(clock, ReplayClock):
                clock.advance_to(close.ts + BAR_INTERVAL)
            if self.retrain is not None:  # at this bar's close: the store holds this bar
                self.retrain.tick(clock.now())
                if self.retrain.running and isinstance(clock, ReplayClock):
                    # a replay's retrain takes no market time: the replay waits for it, and a
                    # promotion serves from the next bar on, whatever the machine's speed
                    await asyncio.to_thread(self.retrain.join)
            if not self.side.deliver(close):
                continue  # its class's feed is stopped (POST /v1/feeds/{class}/stop)
            try:
                await session.on_bar_close(close)
            except Exception as exc:  # one bad bar must not end the worker; it is reported
                self.errors.append(f"{close.ts.isoformat()}: {type(exc).__name__}: {exc}")
                if len(self.errors) > 100:
                    return "errors"
            if gap is not None:
                next_at += gap
                delay = next_at - time.monotonic()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), delay)
            else:
                await asyncio.sleep(0)  # let signal handlers run
        return self.stop_reason if self.stop.is_set() else "end_of_replay"

    def _duration_timer(self) -> None:  # --duration counts from here (the warm-up is done)
        if self.opts.duration_s is not None:
            asyncio.get_running_loop().call_later(self.opts.duration_s, self._timed_out)

    def _timed_out(self) -> None:
        self.stop_reason = "duration"
        self.stop.set()

    def _maybe_swap(self, session: TradingSession) -> None:
        """A promotion since the last bar: serve that version from this bar on."""
        current = registry.promoted_version(self.settings.registry_dir, "price", session.calendar)
        if current is not None and current != session.model.version:
            try:
                session.swap_model(SignalModel.load(self.settings.registry_dir, current))
            except Exception as exc:  # keep serving the old version, say why
                self.errors.append(f"promotion to {current}: {type(exc).__name__}: {exc}")

    async def _flatten(self, session: TradingSession, clock: ReplayClock) -> None:
        """--flatten-on-exit: the kill switch's flatten, sent as orders (they fill at the
        venue's next price; a replay that ended leaves them open and says so)."""
        now = clock.now()
        session.risk.kill("flatten_on_exit")
        decision = session.risk.on_mark(session.execution.snapshot(), now, session.calendar)
        if decision is not None and decision.orders:
            await session._execute(decision)  # noqa: SLF001 - the session's own order path
            session.records.decisions.append(decision)


def retrain_hook(opts, settings, model, store, classes, asset_class, **kw):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201, E501
    """The ``--retrain-every`` hook (None without the flag): the ``[retrain]`` settings, the
    served version's lookback unless they give one, the traded tickers' bars in ``store``."""
    if opts.retrain_every_s is None:
        return None
    from app.pipeline.retrain import retrain_options
    from app.pipeline.retrain_hook import RetrainHook

    return RetrainHook(
        opts.retrain_every_s, settings=settings, store=store, symbols=list(classes),
        asset_class=asset_class, out=opts.out / "retrain",
        options=retrain_options(settings, int(model.bundle.lookback)), **kw,
    )  # fmt: skip


def _panel_side(opts: LiveOptions, settings: Settings):  # type: ignore[no-untyped-def]
    """The panel's routes, feed switch, jobs and process (app/serve/worker_api.py)."""
    from app.serve.worker_api import PanelSide, job_board

    data = opts.replay[0] if opts.replay else None
    jobs = job_board(data, opts.out, settings.registry_dir, opts.asset_class, opts.jobs_address)
    mode = "live" if opts.live else "paper"
    return PanelSide(
        mode, opts.venue, jobs, opts.panel, opts.panel_port, opts.config, opts.announce
    )


def _promoted(registry_dir: Path, asset_class: AssetClass | None = None) -> SignalModel:
    """The promoted price model (of ``asset_class``: that class's pointer); exit 2 if none."""
    version = registry.promoted_version(registry_dir, "price", asset_class)
    if version is None:
        of = f" for {AssetClass(asset_class).value}" if asset_class else ""
        raise InputError(
            f"no promoted model{of} in {registry_dir}: run `make run` (or walkforward, then "
            "`python -m app models promote VERSION`) first"
        )
    return SignalModel.load(registry_dir, version)


def _check_live_allowed(opts: LiveOptions) -> None:
    if not opts.live:
        raise InputError(
            f"--venue {opts.venue} sends real orders: add --live (and its keys in the "
            "environment); paper trading is --venue paper"
        )
    if opts.replay:
        raise InputError(
            f"--venue {opts.venue}: a real venue trades on the live feed, never on a replay; "
            "--replay runs on --venue paper"
        )


def _load(opts: LiveOptions, registry_dir: Path | None = None):  # type: ignore[no-untyped-def]
    """The recording (``app.live.replay``) and the asset class to trade from it: ``--asset-class``,
    else the first of the recording's classes with a promoted model (else its first class)."""
    from app.live.replay import load_replay

    if len(opts.replay) != 1:
        raise InputError(f"--replay: one file, folder or simulator folder, got {opts.replay}")
    data = load_replay(opts.replay[0], opts.asset_class)
    if opts.asset_class:
        return data, AssetClass(opts.asset_class)
    served = registry.promoted_versions(registry_dir) if registry_dir is not None else {}
    ready = [c for c in data.classes if AssetClass(c) in served]
    return data, AssetClass((ready or list(data.classes))[0])


class _FeedReplay:
    """Bar closes of a recording through the feed path a live bar takes (``FeedWorker``:
    validate, store, incremental features, windows), emitted as they complete."""

    def __init__(self, data, asset_class, model, store, settings, wrap=None) -> None:  # type: ignore[no-untyped-def]
        from app.live.feed import FeedWorker
        from app.live.headlines import HeadlineScorer
        from app.live.replay import Replay
        from app.live.window_spec import WindowSpec

        window = WindowSpec.from_bundle(model.bundle)
        self.replay = Replay(data, asset_class)  # pacing is the worker loop's
        scorer = None
        if data.news:  # headlines scored as `predict` scores them (the promoted head)
            from app.models.text_loader import cached_sentiment_model

            text = cached_sentiment_model(settings.sentiment, settings.registry_dir)
            scorer = HeadlineScorer(text, data.assets, window.impact_model)
            scorer = wrap(scorer) if wrap is not None else scorer  # the panel's headlines
        # bars reach the store in batches (one DuckDB write per bar costs ~30 ms here)
        self.feed = FeedWorker(
            asset_class, self.replay.symbols, window, store, scorer=scorer, store_every=288
        )

    async def closes(self):  # type: ignore[no-untyped-def]
        for item in self.replay.items():
            for close in self.feed.on_item(item):
                yield close
        self.feed.close()


def _replay_start(bars, replay_from: datetime | None) -> datetime:  # type: ignore[no-untyped-def]
    first = min(f["ts"].iloc[0] for f in bars.values()).to_pydatetime()
    if replay_from is None:
        return first
    return max(first, replay_from)
