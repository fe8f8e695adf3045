"""``python -m app live --address local|auto|ray://HOST:PORT|IP:PORT``: the worker on Ray.

The same replay as the plain worker (app/worker.py), or without ``--replay`` the same live
venue bars and flow pollers (``app.live.venue_feeds``; paper orders), through the distributed
live loop: a ``StoreActor`` owns the bars' DuckDB file (with QuestDB the feed writes over ILP
itself), one ``FeedActor`` for the traded asset class validates, stores, updates the
incremental features and sends each bar close to the Serve app's handle (``app.serve.graph``:
ingress -> Model -> Risk -> the execution actor), waiting for its answer, so ``--speed max``
goes as fast as the graph answers. The API is served by Serve's HTTP proxy on
127.0.0.1:``--port``. On stop (``--duration``: on a venue counted from the feed's warm-up, by
the feed actor; the end of the replay, SIGTERM / Ctrl-C) it flattens if asked, writes the same
``--out`` files as the plain worker and returns the same JSON summary.

``local`` starts a Ray inside this process (or uses the one this process already runs);
anything else is handed to ``ray.init(address=...)`` (a running cluster). Ray 2.60 keeps token
authentication on (``~/.ray/auth_token``): a joined cluster needs the same token.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from app.config import Settings, load_settings
from app.errors import InputError
from app.live.records import write_records
from app.types import BAR_INTERVAL, AssetClass
from app.worker import LiveOptions, _promoted
from app.worker_classes import APP_NAME, ClassGraph, api_urls, combined_summary, replay_graphs

STORE_EVERY = 288  # bars per store write, as the plain worker (one DuckDB write costs ~30 ms)
# the feed actor's stats the summary carries (side_polls: per flow poller, venue feeds)
FEED_STATS = (
    "starts", "rejected", "bars", "stored", "already_stored", "restored_bars", "side_polls",
)  # fmt: skip


def run_live_serve(opts: LiveOptions, settings: Settings | None = None) -> dict[str, object]:
    """Run the worker on Ray to its end; returns the JSON summary (``InputError``: exit 2)."""
    if not opts.address:
        raise InputError("--address: give local, auto, ray://HOST:PORT or IP:PORT")
    settings = settings or (load_settings(opts.config) if opts.config else load_settings())
    if opts.venue != "paper":
        raise InputError(
            f"--venue {opts.venue} with --address: the Serve graph's execution actor trades "
            "on --venue paper only; a real venue runs on the plain worker (drop --address)"
        )
    if not opts.serve_api:
        raise InputError("--no-api: with --address the Serve app is the loop; drop one of them")
    if opts.replay:
        graphs = replay_graphs(opts, settings)
    else:  # the venue's bars as they close, for the tickers the model was trained on
        from app.live.window_spec import WindowSpec

        if opts.replay_from is not None:
            raise InputError("--replay-from: without --replay there is nothing to replay")
        model = _promoted(settings.registry_dir, opts.asset_class)
        asset_class = AssetClass(WindowSpec.from_bundle(model.bundle).spec.asset_class)
        trade_from = datetime.now(UTC) - 2 * BAR_INTERVAL  # the newest closed bar trades
        # the graph's clocks are the wall clock (start None)
        graphs = [ClassGraph(asset_class, model, tuple(model.bundle.symbols), None, trade_from)]
    graphs = [g.placed(opts.out, several=len(graphs) > 1) for g in graphs]
    opts.out.mkdir(parents=True, exist_ok=True)
    return _ServeWorker(opts, settings, graphs).run()


class _ServeWorker:
    def __init__(self, opts: LiveOptions, settings: Settings, graphs: list[ClassGraph]) -> None:
        self.venue = not opts.replay  # the feed actor polls the venue (replay: start is set)
        # a venue feed times --duration itself, from the end of its warm-up (as the plain
        # worker); the driver's _wait then only waits for it or a signal
        self.feed_duration = opts.duration_s if self.venue else None
        self.opts = replace(opts, duration_s=None) if self.venue else opts
        self.settings = settings
        self.graphs = graphs
        self.stop = threading.Event()

    def run(self) -> dict[str, object]:
        import ray
        from ray import serve

        opts = self.opts
        owned = _connect(opts.address)
        actors: list[Any] = []
        deployed: list[str] = []
        hooks: dict[AssetClass, Any] = {}  # the --retrain-every hooks (retrain_hook.py)
        t0 = time.monotonic()
        try:
            port = opts.port or _free_port()
            serve.start(
                http_options={"host": "127.0.0.1", "port": port},
                logging_config={"enable_access_log": False},
            )
            handles = {}
            for g in self.graphs:
                handles[g.asset_class] = serve.run(
                    self._app(port, g), name=g.app_name, route_prefix=g.route_prefix
                )
                deployed.append(g.app_name)
            urls = api_urls(port, self.graphs)
            for g in self.graphs:
                api = urls["api"] if len(self.graphs) == 1 else urls[f"api_{g.asset_class.value}"]
                opts.announce(f"signal API: {api}  (OpenAPI: {api}/docs; Ray Serve)")
            store = self._store()
            if store is not None:
                actors.append(store)
            feeds = {}
            for g in self.graphs:
                feeds[g.asset_class] = self._feed(g, store, handles[g.asset_class])
                actors.append(feeds[g.asset_class])
                hook = self._retrain(g, store, handles[g.asset_class])
                if hook is not None:
                    hooks[g.asset_class] = hook
            reason, stats = self._wait(feeds, t0, hooks)
            results = {}
            for g in self.graphs:
                handle = handles[g.asset_class]
                if opts.flatten_on_exit:
                    handle.flatten.remote("flatten_on_exit").result()
                records = handle.records.remote().result()
                fill_rows = handle.fill_rows.remote().result()
                report = handle.report.remote().result()
                handle.stop.remote().result()
                results[g.asset_class] = (records, fill_rows, report)
            if store is not None:
                ray.get(store.close.remote())
        finally:
            for hook in hooks.values():
                hook.close()
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
            for name in deployed:
                with contextlib.suppress(Exception):
                    serve.delete(name)
            if owned:
                with contextlib.suppress(Exception):
                    serve.shutdown()
                ray.shutdown()
        seconds = round(time.monotonic() - t0, 3)
        parts = {}
        for g in self.graphs:
            records, fill_rows, report = results[g.asset_class]
            part = self._summary(g, records, fill_rows, report, stats[g.asset_class])
            part["stopped"] = stats[g.asset_class].get("stopped") or reason  # a venue's timer
            if g.asset_class in hooks:
                part["retrain"] = hooks[g.asset_class].summary()
            parts[g.asset_class.value] = part
        summary = combined_summary(parts, opts, urls, seconds)
        (opts.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        return summary

    def _summary(self, g: ClassGraph, records, fill_rows, report, stats) -> dict[str, object]:  # type: ignore[no-untyped-def]  # noqa: ANN001, E501
        """One class's part of the summary; writes its --out files."""
        opts = self.opts
        files = write_records(records, fill_rows, g.out)
        return {
            "model_version": report["model_version"],
            "venue": opts.venue,
            "address": opts.address,
            "bars": records.bars,
            "signals": len(records.signals),
            "decisions": len(records.decisions),
            "orders": records.orders,
            "fills": len(records.fills),
            "final_equity": records.equity[-1].equity if records.equity else opts.initial_equity,
            "risk_state": report["risk_state"],
            "errors": report["errors"] + records.errors + stats.get("errors", []),
            "files": files,
            "feed": {k: stats[k] for k in FEED_STATS if k in stats},
        }

    def _app(self, port: int, g: ClassGraph):  # type: ignore[no-untyped-def]
        from app.serve.auth import resolve_keys
        from app.serve.graph import build_app

        api = self.settings.api.model_copy(update={"port": port, "host": "127.0.0.1"})
        settings = resolve_keys(
            self.settings.model_copy(update={"api": api}), announce=self.opts.announce
        )
        self.settings = settings  # one generated key serves every class's app
        return build_app(
            settings,
            asset_classes=g.classes,
            calendar=g.asset_class,
            state_dir=g.out,
            replay_start=g.start,
            trade_from=g.trade_from,
            initial_equity=self.opts.initial_equity,
        )

    def _store(self):  # type: ignore[no-untyped-def]
        """The store owner (DuckDB: one writer for every class's feed), or None (QuestDB:
        each feed actor writes over ILP itself)."""
        import ray

        from app.actors.store_actor import STORE_ACTOR_OPTIONS, StoreActor

        url = self._store_url()
        if not url.startswith("duckdb"):
            return None
        return ray.remote(StoreActor).options(**STORE_ACTOR_OPTIONS, num_cpus=0).remote(url)

    def _store_url(self) -> str:
        return self.opts.store or f"duckdb:///{self.opts.out / 'bars.db'}"

    def _feed(self, g: ClassGraph, store, handle):  # type: ignore[no-untyped-def]
        """The class's feed actor, sending to ``handle``: the replay, or the venue's bars
        (``--feed-url``) with their flow pollers."""
        import ray

        from app.actors.feed_actor import FeedActor, FeedConfig
        from app.live.venue_feeds import warmup_batch
        from app.live.window_spec import WindowSpec

        opts = self.opts
        window = WindowSpec.from_bundle(g.model.bundle)
        venue = {  # the plain worker's: one store write for the warm-up, then one per poll
            "settings": self.settings,
            "feed_url": opts.feed_url,
            "duration_s": self.feed_duration,
            "store_every": warmup_batch(window, list(g.symbols)),
        }
        config = FeedConfig(
            asset_class=g.asset_class.value,
            replay=None if self.venue else str(opts.replay[0]),
            checkpoint_dir=str(g.out / "checkpoints"),
            symbols=g.symbols,
            store_url=None if store is not None else self._store_url(),
            speed=opts.speed,
            wait_sink=True,
            registry_dir=str(self.settings.registry_dir),
            **(venue if self.venue else {"store_every": STORE_EVERY}),
        )
        return (
            ray.remote(FeedActor)
            .options(**feed_actor_options(opts.feed_resource), name=feed_actor_name(config))
            .remote(config, window, store, handle)
        )

    def _retrain(self, g: ClassGraph, store, handle):  # type: ignore[no-untyped-def]
        """The class's ``--retrain-every`` hook (None without the flag): it reads the bars
        through the store actor (or the QuestDB store the feed writes to), runs the retrain as
        a Ray task and promotes a better candidate through the class's ingress, as
        ``POST /v1/models/promote``."""
        if self.opts.retrain_every_s is None:
            return None
        import ray

        from app.actors.store_actor import RemoteStore
        from app.store import open_store
        from app.worker import retrain_hook

        if store is not None:
            reader: Any = RemoteStore(store, ray.get(store.store_url.remote()))
        else:
            reader = open_store(self._store_url())
        return retrain_hook(
            replace(self.opts, out=g.out), self.settings, g.model, reader, g.classes,
            g.asset_class, promote=lambda version: handle.promote.remote(version).result(),
        )  # fmt: skip

    def _wait(self, feeds, t0: float, hooks) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
        """Until every replay ends, ``--duration`` passes, or SIGTERM / Ctrl-C; ticks each
        class's ``--retrain-every`` hook with the market time of its feed's latest bar close.
        A retrain running when the replay ends is waited for (its result in the summary).
        Returns the reason and each class's feed stats."""
        import ray

        runs = {c: feed.run.remote() for c, feed in feeds.items()}
        previous = _on_signals(self.stop)
        tickers = {}
        for g in self.graphs:
            if g.asset_class in hooks:  # a venue feed: the newest closed bar trades
                first = g.start or g.trade_from
                tickers[g.asset_class] = _RetrainTicker(
                    hooks[g.asset_class], feeds[g.asset_class], first
                )
        reason = "end_of_replay"
        try:
            pending = dict(runs)
            while pending:
                done, _ = ray.wait(list(pending.values()), timeout=0.25)
                for cls in [c for c, ref in pending.items() if ref in done]:
                    del pending[cls]
                    if cls in tickers:  # the last bar close ticks too; then its retrain
                        tickers[cls].poll(wait=True)
                        tickers[cls].hook.join()
                for cls in pending:
                    if cls in tickers:
                        tickers[cls].poll()
                if not pending:
                    break
                over = self.opts.duration_s is not None
                if over and time.monotonic() - t0 >= self.opts.duration_s:
                    reason = "duration"
                elif self.stop.is_set():
                    reason = "signal"
                else:
                    continue
                for cls in pending:
                    feeds[cls].stop.remote()
                break
            return reason, {c: ray.get(ref, timeout=300) for c, ref in runs.items()}
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class _RetrainTicker:
    """Ticks the retrain hook with the close time of the feed's latest bar (the earliest of its
    tickers' last bars + one bar), read from the feed actor's stats without waiting for them:
    a restarting feed delays a tick, never the driver. The schedule starts at the first traded
    bar's close, as the plain worker's (its first tick)."""

    def __init__(self, hook: Any, feed: Any, start: datetime) -> None:
        self.hook = hook
        self.feed = feed
        self.start = start + BAR_INTERVAL
        self.hook.tick(self.start)  # the first tick only sets the schedule
        self._asked: Any = None

    def poll(self, wait: bool = False) -> None:
        """Tick with the answer to the last question, if there is one (``wait``: ask now and
        wait for the answer: the replay's end); ask again."""
        import ray

        if wait:
            self._asked = self.feed.stats.remote()
        if self._asked is not None:
            ready, _ = ray.wait([self._asked], timeout=30 if wait else 0)
            if not ready:
                return
            try:
                now = bar_close_time(ray.get(self._asked))
            except Exception:  # noqa: BLE001 - the feed is restarting: ask again
                now = None
            if now is not None and now > self.start:
                self.hook.tick(now)
        self._asked = None if wait else self.feed.stats.remote()


def bar_close_time(stats: dict[str, Any]) -> datetime | None:
    """The close time of the last bar every ticker of a feed has (its stats' ``last_ts``)."""
    last = [datetime.fromisoformat(t) for t in (stats.get("last_ts") or {}).values() if t]
    return min(last) + BAR_INTERVAL if last else None


def _connect(address: str) -> bool:
    """Start (``local``) or join Ray; False when this process already runs one (kept)."""
    import ray

    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    try:
        ray.init(address=address, **kw)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise InputError(f"--address={address!r}: cannot reach Ray: {exc}") from exc
    return True


def _on_signals(stop: threading.Event) -> dict:
    previous = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    return previous


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def feed_actor_options(resource: str = "") -> dict[str, object]:
    """Ray options of a feed actor: restartable, no CPU reserved, and with ``--feed-resource``
    a small share of that custom resource, so it runs only on nodes declaring it (a cluster's
    worker nodes: ``resources: {feed: 1}``) and moves to another such node when its node dies."""
    from app.actors.feed_actor import FEED_ACTOR_OPTIONS

    options: dict[str, object] = {**FEED_ACTOR_OPTIONS, "num_cpus": 0}
    if resource:
        options["resources"] = {resource: 0.01}
    return options


def feed_actor_name(config: Any) -> str:
    """The feed actor's Ray name (``ray.get_actor(name)``: its stats, or a test's kill)."""
    return f"{APP_NAME}-feed-{config.asset_class}"
