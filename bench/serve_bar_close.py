"""Bar close -> signals for N tickers through the Ray Serve graph, p50 / p99, beside the plain
worker's in-process figure (bench/bar_close.py) on the same tickers and days.

The path ``python -m app live --address local`` runs (app/worker_serve.py): the feed actor's
``handle.on_close.remote(close).result()`` into the app of ``app.serve.graph.build_app``
(ingress -> Model deployment -> Risk deployment -> the paper execution actor, with its state
file and DuckDB journal). Here the driver plays the feed actor: a ``FeedWorker`` over the replay
bars builds the ``BarClose``s (before anything is timed), then each close is sent and waited for.
The first ``--warmup`` closes with windows are excluded on both paths (compiles, caches).

    PYTHONPATH=. .venv/bin/python bench/serve_bar_close.py --days 2 --tickers 10

The last stdout line is JSON: ``serve`` p50 / p99 / mean in ms, ``in_process`` p50 / p99,
their ``ratio_p50`` / ``ratio_p99``, the load average at start and end, and the close counts.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from app.live.feed import BarClose, FeedWorker  # noqa: E402
from app.live.window_spec import WindowSpec  # noqa: E402
from app.types import AssetClass, Bar  # noqa: E402
from bench.bar_close import _pct, bar_close_latency, market  # noqa: E402

APP_NAME = "bench-bar-close"
OHLCV = ("open", "high", "low", "close", "volume")


def feed_closes(tmp: Path, bars: dict, model) -> list[BarClose]:  # type: ignore[no-untyped-def]
    """The feed actor's closes: a ``FeedWorker`` (DuckDB store, one write per 288 bars as the
    worker) fed the bars in time order, ticker by ticker within a bar."""
    from app.store import open_store

    window = WindowSpec.from_bundle(model.bundle)
    store = open_store(f"duckdb:///{tmp / 'bars.db'}")
    worker = FeedWorker("crypto", list(bars), window, store, store_every=288)
    cols = {s: f[list(OHLCV)].to_numpy(np.float64) for s, f in bars.items()}
    ts = {s: f["ts"].astype("datetime64[ns, UTC]") for s, f in bars.items()}
    closes: list[BarClose] = []
    for i in range(len(next(iter(bars.values())))):
        for s in bars:
            closes += worker.on_bar(Bar(s, ts[s].iloc[i].to_pydatetime(), *map(float, cols[s][i])))
    worker.close()
    store.close()
    return closes


def serve_latency(tmp: Path, tickers: int, days: int, warmup: int) -> dict:
    import ray
    from ray import serve

    from app.config import load_settings
    from app.serve.auth import resolve_keys
    from app.serve.graph import build_app
    from tests.unit.live.session_builders import save_promoted

    bars, classes, model = market(tickers, days)
    closes = feed_closes(tmp, bars, model)
    registry_dir = save_promoted(tmp / "registry", model)
    port = _free_port()
    settings = resolve_keys(
        load_settings(registry_dir=registry_dir, api={"host": "127.0.0.1", "port": port}),
        announce=lambda _: None,
    )
    ray.init(include_dashboard=False, log_to_driver=False)
    took: list[float] = []
    try:
        serve.start(
            http_options={"host": "127.0.0.1", "port": port},
            logging_config={"enable_access_log": False},
        )
        app = build_app(
            settings,
            asset_classes=classes,
            calendar=AssetClass.CRYPTO,
            state_dir=tmp / "state",
            replay_start=closes[0].ts,
        )
        handle = serve.run(app, name=APP_NAME, route_prefix="/")
        for close in closes:
            t = time.perf_counter()
            handle.on_close.remote(close).result()
            if close.windows:
                took.append(time.perf_counter() - t)
        records = handle.records.remote().result()
        report = handle.report.remote().result()
        handle.stop.remote().result()
        serve.delete(APP_NAME)
    finally:
        serve.shutdown()
        ray.shutdown()
    ms = np.asarray(took[warmup:]) * 1e3
    return {
        "bar_closes": int(ms.size),
        "orders": records.orders,
        "fills": len(records.fills),
        "errors": report["errors"],
        **_pct(ms),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tickers", type=int, default=10)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:  # in-process first: no Ray beside it
        ref = bar_close_latency(Path(tmp), args.tickers, args.days, args.warmup)
    with tempfile.TemporaryDirectory() as tmp:
        got = serve_latency(Path(tmp), args.tickers, args.days, args.warmup)
    inproc = ref["bar_close"]
    out = {
        "tickers": args.tickers,
        "days": args.days,
        "warmup_excluded": args.warmup,
        "serve": got,
        "in_process": {
            "bar_closes": ref["bar_closes"],
            "orders": ref["orders"],
            "fills": ref["fills"],
            **inproc,
        },
        "ratio_p50": round(got["p50_ms"] / inproc["p50_ms"], 2),
        "ratio_p99": round(got["p99_ms"] / inproc["p99_ms"], 2),
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
