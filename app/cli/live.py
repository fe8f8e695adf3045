"""``python -m app live``: the live / paper worker (parsing only; app/worker.py works).

    python -m app live --replay runs/sim --speed max --out runs/live
    python -m app live --replay data/BTCUSDT_5m.csv --asset-class crypto --speed 20 --out d
    python -m app live --venue binance --live --testnet --out runs/live-testnet
    python -m app live --address local --replay runs/sim --speed max --out runs/live-ray

Serves the promoted model version (exit 2 when there is none), prints the API URLs, starts the
control panel beside the API (``python -m app panel``, unless --no-panel) and prints its URL,
runs until --duration, the end of the replay, or SIGTERM / Ctrl-C, writes signals.csv,
decisions.csv, fills.csv and equity.csv to --out and prints the JSON summary as the last line.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from app.errors import InputError
from app.pipeline.retrain_hook import parse_duration
from app.types import AssetClass
from app.worker import VENUES, LiveOptions, run_live


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed {text!r}: a number of bars/s, or max") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--speed {text!r}: must be > 0")
    return value


def _every(text: str) -> float:
    try:
        return parse_duration(text, "--retrain-every")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _utc_time(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--replay-from {text!r}: not an ISO 8601 time") from None
    if ts.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--replay-from {text!r}: needs a UTC offset (…Z)")
    return ts.astimezone(UTC)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "live",
        help="the live / paper trading worker and its signal API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="settings TOML")
    p.add_argument("--venue", choices=VENUES, default="paper")
    p.add_argument("--live", action="store_true", help="allow a real venue (needs its keys)")
    p.add_argument("--testnet", action="store_true", help="the venue's test network")
    p.add_argument("--venue-url", default="", help="point the venue client at another address")
    p.add_argument(
        "--feed-url",
        default="",
        help="without --replay: the live bar feed's API URL (ccxt public API; a proxy, a mirror)",
    )
    p.add_argument(
        "--replay",
        nargs="+",
        type=Path,
        default=[],
        metavar="PATH",
        help="a <SYMBOL>_5m.csv file, a folder of them, or a simulator folder",
    )
    p.add_argument("--speed", type=_speed, default=None, help="bars per second per ticker, or max")
    p.add_argument("--asset-class", choices=[c.value for c in AssetClass], default=None)
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this long of trading (the warm-up of a replay does not count)",
    )
    p.add_argument(
        "--replay-from",
        type=_utc_time,
        default=None,
        metavar="ISO8601",
        help="trade from this bar on; the bars before it warm the features up, unpaced",
    )
    p.add_argument("--port", type=int, default=8000, help="API port on 127.0.0.1 (0 = free)")
    p.add_argument(
        "--address",
        default="",
        help="run on Ray through the Serve graph: local (start one here), auto, ray://HOST:PORT "
        "or IP:PORT (join); the API is Serve's HTTP proxy on 127.0.0.1:--port",
    )
    p.add_argument(
        "--feed-resource",
        default="",
        metavar="NAME",
        help="with --address: run the feed actors only on nodes declaring this custom resource "
        "(e.g. feed: the cluster's worker nodes; with --store questdb:// they write over ILP)",
    )
    p.add_argument("--store", default="", help="journal store URL (default: DuckDB in --out)")
    p.add_argument("--flatten-on-exit", action="store_true")
    p.add_argument(
        "--retrain-every",
        type=_every,
        default=None,
        metavar="DURATION",
        help="walk-forward on the store's latest data every 30m / 6h / 1d; promoted only if it "
        "beats the served version on the same recent folds",
    )
    p.add_argument("--no-api", action="store_true", help="run the loop without the signal API")
    p.add_argument(
        "--no-panel", action="store_true", help="do not start the control panel beside the API"
    )
    p.add_argument(
        "--panel-port", type=int, default=None, help="the panel's port (default: ui.port; 0 = free)"
    )
    p.add_argument(
        "--jobs-address",
        default="",
        metavar="URL",
        help="Ray dashboard for research jobs (POST /v1/jobs); default: local subprocesses",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict[str, object]:
    if args.testnet and args.venue == "paper":
        raise InputError("--testnet: a venue option; --venue paper has no test network")
    opts = LiveOptions(
        out=args.out,
        config=args.config,
        venue=args.venue,
        live=args.live,
        testnet=args.testnet,
        venue_url=args.venue_url,
        feed_url=args.feed_url,
        replay=tuple(args.replay),
        speed=args.speed,
        asset_class=AssetClass(args.asset_class) if args.asset_class else None,
        duration_s=args.duration,
        port=args.port,
        address=args.address,
        feed_resource=args.feed_resource,
        store=args.store,
        flatten_on_exit=args.flatten_on_exit,
        serve_api=not args.no_api,
        retrain_every_s=args.retrain_every,
        replay_from=args.replay_from,
        panel=not args.no_panel,
        panel_port=args.panel_port,
        jobs_address=args.jobs_address,
    )
    if opts.address:  # the distributed loop: feed actors -> the Serve graph
        from app.worker_serve import run_live_serve

        return run_live_serve(opts)
    return run_live(opts)
