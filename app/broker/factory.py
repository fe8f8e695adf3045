"""Build a broker adapter by venue name.

Only ``app.broker.execution`` imports this module (tests/unit/broker/test_import_contract.py):
every other caller reaches a venue through the ExecutionEngine or its read-only helpers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from app.broker.ccxt_broker import KEY_VARS, CcxtBroker, credentials_from_env
from app.broker.errors import BrokerError, MissingCredentials
from app.broker.ib_broker import IBBroker, asset_classes_of
from app.broker.paper import PaperBroker
from app.config import Settings
from app.types import AssetClass

VENUES = ("paper", "binance", "ib")


class VenueNotAvailable(BrokerError):
    """The venue's adapter is not installed or not written yet."""


def require_live_allowed(venue: str, live_flag: bool, env: Mapping[str, str]) -> None:
    """A real venue trades only with ``--live`` on the command line and its keys in the
    environment; raises MissingCredentials (one line naming what is missing) otherwise."""
    if venue == "paper":
        return
    if not live_flag:
        raise MissingCredentials(f"venue {venue!r} trades real money: pass --live to allow it")
    if venue == "binance":
        missing = [v for v in KEY_VARS if not env.get(v)]
        if missing:
            raise MissingCredentials(f"set {' and '.join(missing)} for the binance venue")


def make_broker(
    venue: str,
    settings: Settings,
    env: Mapping[str, str],
    *,
    testnet: bool = False,
    venue_url: str = "",
    asset_classes: Mapping[str, AssetClass] | None = None,
    state_path: Path | None = None,
    initial_cash: float | None = None,
):
    """The adapter of ``venue``. Paper: ``asset_classes`` / ``state_path`` / ``initial_cash``
    replace the universe's classes, ``data_dir/paper_broker.json`` and the configured cash
    (a replay trades its own tickers in its own folder)."""
    if venue not in VENUES:
        raise ValueError(f"venue={venue!r}: expected one of {VENUES}")
    symbols = [a.symbol for a in settings.universe]
    if venue == "paper":
        classes = asset_classes or {a.symbol: a.asset_class for a in settings.universe}
        return PaperBroker(
            classes,
            settings.costs,
            initial_cash=initial_cash or settings.execution.initial_cash,
            state_path=state_path or settings.data_dir / "paper_broker.json",
        )
    if venue == "binance":
        key, secret = credentials_from_env(env)
        crypto = [s for s in symbols if settings.asset(s).asset_class.value == "crypto"]
        return CcxtBroker(
            settings.ccxt,
            crypto,
            api_key=key,
            secret=secret,
            testnet=testnet or settings.execution.testnet,
            venue_url=venue_url or settings.execution.venue_url,
        )
    return IBBroker(settings.ib, asset_classes_of(settings.universe))
