"""`live --address ... --feed-resource NAME`: the feed actors' Ray options (the same options
tests/integration/test_live_actors.py uses on a loopback cluster whose worker nodes declare
``feed``, where the actor survives the loss of its node)."""

from __future__ import annotations

import argparse

from app.cli import live as live_cli
from app.worker_serve import feed_actor_options


def test_a_feed_resource_pins_the_feed_actors_to_nodes_declaring_it() -> None:
    plain = feed_actor_options()
    assert plain["max_restarts"] == -1 and plain["num_cpus"] == 0 and "resources" not in plain
    assert feed_actor_options("feed")["resources"] == {"feed": 0.01}


def test_the_cli_passes_the_flag_through() -> None:
    parser = argparse.ArgumentParser()
    live_cli.register(parser.add_subparsers())
    args = parser.parse_args(["live", "--address", "auto", "--feed-resource", "feed", "--out", "x"])
    assert args.feed_resource == "feed"
