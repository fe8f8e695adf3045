"""``python -m app broker status``: connect to a venue read-only and print what it holds."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from app.broker.errors import BrokerConnectError, MissingCredentials
from app.broker.execution import venue_status
from app.config import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("broker", help="venue connectivity, balances, orders (read-only)")
    sub = p.add_subparsers(dest="broker_command", required=True)
    s = sub.add_parser("status", help="connect read-only; print balances, open orders, positions")
    s.add_argument("--venue", choices=["paper", "binance", "ib"], default="paper")
    s.add_argument("--testnet", action="store_true", help="ccxt sandbox / testnet endpoints")
    s.add_argument("--venue-url", default="", help="replace scheme+host of every venue endpoint")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    settings = load_settings()
    try:
        status = asyncio.run(
            venue_status(
                args.venue, settings, os.environ, testnet=args.testnet, venue_url=args.venue_url
            )
        )
    except MissingCredentials as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except (BrokerConnectError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as exc:  # noqa: BLE001 - e.g. the ib adapter missing: one line, exit 1
        print(f"error: venue {args.venue}: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    for asset, amount in sorted(status["balances"].items()):
        print(f"balance {asset} {amount:g}")
    for o in status["open_orders"]:
        print(f"open {o['client_order_id']} {o['symbol']} {o['side']} {o['qty']:g} {o['status']}")
    for sym, p in sorted(status["positions"].items()):
        print(f"position {sym} {p['qty']:g} @ {p['avg_price']:g}")
    return status
