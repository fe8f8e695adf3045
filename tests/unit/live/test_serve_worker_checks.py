"""``live --address`` refuses, before Ray starts, what the Ray worker cannot do: a real venue
(the Serve graph's execution actor trades paper only) and --replay-from without --replay."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.config import load_settings
from app.errors import InputError
from app.worker import LiveOptions
from app.worker_serve import run_live_serve
from tests.unit.live.session_builders import save_promoted, sim_bars, tiny_model


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    bars, _ = sim_bars(days=1)
    registry = save_promoted(tmp_path_factory.mktemp("reg") / "registry", tiny_model(bars))
    return load_settings(registry_dir=registry)


@pytest.mark.parametrize(
    ("options", "flag"),
    [
        ({"venue": "binance", "live": True}, "--venue binance with --address"),
        ({"venue": "ib", "live": True, "replay": ("sim",)}, "--venue ib with --address"),
        ({"replay_from": datetime(2025, 1, 1, tzinfo=UTC)}, "--replay-from"),
    ],
)
def test_what_the_ray_worker_cannot_run_is_refused_naming_the_flag(
    tmp_path, settings, options, flag
) -> None:
    opts = LiveOptions(out=tmp_path / "out", address="local", **options)
    with pytest.raises(InputError, match=flag):
        run_live_serve(opts, settings)
    assert not (tmp_path / "out").exists()  # refused before anything started
