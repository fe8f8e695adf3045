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
from app.worker import LiveOptions, _load, _promoted, _replay_start

APP_NAME = "signal"
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
    model = _promoted(settings.registry_dir)
    if opts.venue != "paper":
        raise InputError(
            f"--venue {opts.venue} with --address: the Serve graph's execution actor trades "
            "on --venue paper only; a real venue runs on the plain worker (drop --address)"
        )
    if not opts.serve_api:
        raise InputError("--no-api: with --address the Serve app is the loop; drop one of them")
    if opts.replay:
        data, asset_class = _load(opts)
        classes = {s: asset_class for s in data.symbols(asset_class)}
        start: datetime | None = _replay_start(data.bars, opts.replay_from)
        trade_from = start
    else:  # the venue's bars as they close, for the tickers the model was trained on
        from app.live.window_spec import WindowSpec

        if opts.replay_from is not None:
            raise InputError("--replay-from: without --replay there is nothing to replay")
        asset_class = WindowSpec.from_bundle(model.bundle).spec.asset_class
        classes = {s: asset_class for s in model.bundle.symbols}
        start = None  # the graph's clocks are the wall clock
        trade_from = datetime.now(UTC) - 2 * BAR_INTERVAL  # the newest closed bar trades
    opts.out.mkdir(parents=True, exist_ok=True)
    return _ServeWorker(opts, settings, model, classes, asset_class, start, trade_from).run()


class _ServeWorker:
    def __init__(self, opts, settings, model, classes, asset_class, start, trade_from) -> None:  # type: ignore[no-untyped-def]  # noqa: E501
        self.venue = not opts.replay  # the feed actor polls the venue (replay: start is set)
        # a venue feed times --duration itself, from the end of its warm-up (as the plain
        # worker); the driver's _wait then only waits for it or a signal
        self.feed_duration = opts.duration_s if self.venue else None
        self.opts = replace(opts, duration_s=None) if self.venue else opts
        self.settings = settings
        self.model = model
        self.classes = classes
        self.asset_class = AssetClass(asset_class)
        self.start = start
        self.trade_from = trade_from
        self.stop = threading.Event()

    def run(self) -> dict[str, object]:
        import ray
        from ray import serve

        opts = self.opts
        owned = _connect(opts.address)
        actors: list[Any] = []
        deployed = False
        retrain = None  # the --retrain-every hook (app/pipeline/retrain_hook.py)
        t0 = time.monotonic()
        try:
            port = opts.port or _free_port()
            serve.start(
                http_options={"host": "127.0.0.1", "port": port},
                logging_config={"enable_access_log": False},
            )
            handle = serve.run(self._app(port), name=APP_NAME, route_prefix="/")
            deployed = True
            urls = {"api": f"http://127.0.0.1:{port}"}
            urls["docs"] = urls["api"] + "/docs"
            opts.announce(f"signal API: {urls['api']}  (OpenAPI: {urls['docs']}; Ray Serve)")
            store, feed = self._feed(handle)
            actors += [a for a in (feed, store) if a is not None]
            retrain = self._retrain(store, handle)
            reason, stats = self._wait(feed, t0, retrain)
            reason = stats.get("stopped") or reason  # "duration": the venue feed's own timer
            if opts.flatten_on_exit:
                handle.flatten.remote("flatten_on_exit").result()
            records = handle.records.remote().result()
            fill_rows = handle.fill_rows.remote().result()
            report = handle.report.remote().result()
            handle.stop.remote().result()
            if store is not None:
                ray.get(store.close.remote())
        finally:
            if retrain is not None:
                retrain.close()
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
            if deployed:
                with contextlib.suppress(Exception):
                    serve.delete(APP_NAME)
            if owned:
                with contextlib.suppress(Exception):
                    serve.shutdown()
                ray.shutdown()
        files = write_records(records, fill_rows, opts.out)
        summary: dict[str, object] = {
            "stopped": reason,
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
            "seconds": round(time.monotonic() - t0, 3),
            "urls": urls,
            "files": files,
            "feed": {k: stats[k] for k in FEED_STATS if k in stats},
        }
        if retrain is not None:
            summary["retrain"] = retrain.summary()
        (opts.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        return summary

    def _app(self, port: int):  # type: ignore[no-untyped-def]
        from app.serve.auth import resolve_keys
        from app.serve.graph import build_app

        api = self.settings.api.model_copy(update={"port": port, "host": "127.0.0.1"})
        settings = resolve_keys(
            self.settings.model_copy(update={"api": api}), announce=self.opts.announce
        )
        return build_app(
            settings,
            asset_classes=self.classes,
            calendar=self.asset_class,
            state_dir=self.opts.out,
            replay_start=self.start,
            trade_from=self.trade_from,
            initial_equity=self.opts.initial_equity,
        )

    def _feed(self, handle):  # type: ignore[no-untyped-def]
        """The store owner (DuckDB) and the class's feed actor, sending to ``handle``: the
        replay, or the venue's bars (``--feed-url``) with their flow pollers."""
        import ray

        from app.actors.feed_actor import FeedActor, FeedConfig
        from app.actors.store_actor import STORE_ACTOR_OPTIONS, StoreActor
        from app.live.venue_feeds import warmup_batch
        from app.live.window_spec import WindowSpec

        opts = self.opts
        url = opts.store or f"duckdb:///{opts.out / 'bars.db'}"
        store = None
        if url.startswith("duckdb"):  # one writer: the store actor owns the file
            store = ray.remote(StoreActor).options(**STORE_ACTOR_OPTIONS, num_cpus=0).remote(url)
        window = WindowSpec.from_bundle(self.model.bundle)
        venue = {  # the plain worker's: one store write for the warm-up, then one per poll
            "settings": self.settings,
            "feed_url": opts.feed_url,
            "duration_s": self.feed_duration,
            "store_every": warmup_batch(window, list(self.classes)),
        }
        config = FeedConfig(
            asset_class=self.asset_class.value,
            replay=None if self.venue else str(opts.replay[0]),
            checkpoint_dir=str(opts.out / "checkpoints"),
            symbols=tuple(self.classes),
            store_url=None if store is not None else url,
            speed=opts.speed,
            wait_sink=True,
            registry_dir=str(self.settings.registry_dir),
            **(venue if self.venue else {"store_every": STORE_EVERY}),
        )
        feed = (
            ray.remote(FeedActor)
            .options(**feed_actor_options(opts.feed_resource), name=feed_actor_name(config))
            .remote(config, window, store, handle)
        )
        return store, feed

    def _retrain(self, store, handle):  # type: ignore[no-untyped-def]
        """The ``--retrain-every`` hook (None without the flag): it reads the bars through the
        store actor (or the QuestDB store the feed writes to), runs the retrain as a Ray task
        and promotes a better candidate through the ingress, as ``POST /v1/models/promote``."""
        if self.opts.retrain_every_s is None:
            return None
        import ray

        from app.actors.store_actor import RemoteStore
        from app.store import open_store
        from app.worker import retrain_hook

        if store is not None:
            reader: Any = RemoteStore(store, ray.get(store.store_url.remote()))
        else:
            reader = open_store(self.opts.store)
        return retrain_hook(
            self.opts, self.settings, self.model, reader, self.classes, self.asset_class,
            promote=lambda version: handle.promote.remote(version).result(),
        )  # fmt: skip

    def _wait(self, feed, t0: float, retrain=None) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
        """Until the replay ends, ``--duration`` passes, or SIGTERM / Ctrl-C; ticks the
        ``--retrain-every`` hook with the market time of the feed's latest bar close. A
        retrain running when the replay ends is waited for (its result in the summary)."""
        import ray

        run = feed.run.remote()
        previous = _on_signals(self.stop)
        first = self.start or self.trade_from  # a venue feed: the newest closed bar trades
        ticker = _RetrainTicker(retrain, feed, first) if retrain is not None else None
        try:
            while True:
                done, _ = ray.wait([run], timeout=0.25)
                if ticker is not None:
                    ticker.poll()
                if done:
                    reason = "end_of_replay"
                    if ticker is not None:  # the last bar close ticks too; then its retrain
                        ticker.poll(wait=True)
                        ticker.hook.join()
                    break
                over = self.opts.duration_s is not None
                if over and time.monotonic() - t0 >= self.opts.duration_s:
                    reason = "duration"
                elif self.stop.is_set():
                    reason = "signal"
                else:
                    continue
                feed.stop.remote()
                break
            return reason, ray.get(run, timeout=300)
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
