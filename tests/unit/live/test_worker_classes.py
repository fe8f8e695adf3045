"""The Ray worker's plan without Ray: which classes of a recording trade (those with a promoted
model, or ``--asset-class``), their apps' names, prefixes and folders, and the summed summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli.main import main
from app.config import load_settings
from app.errors import InputError
from app.live.replay import load_replay
from app.models.registry import promote, save_version
from app.types import AssetClass
from app.worker import LiveOptions
from app.worker_classes import api_urls, combined_summary, replay_graphs
from tests.unit.live.session_builders import tiny_model


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sim") / "sim"
    args = ["simulate", "--out", str(folder), "--days", "1", "--seed", "3"]
    assert main([*args, "--symbols", "BTCUSDT", "EURUSD"]) == 0
    return folder


def _promote(registry: Path, sim: Path, cls: AssetClass, symbol: str) -> str:
    bars = {symbol: load_replay(sim).bars[symbol]}
    model = tiny_model(bars, f"lstm-{cls.value}", asset_class=cls, symbols=(symbol,))
    save_version(registry, model.bundle, version=model.version)
    promote(registry, model.version)
    return model.version


def _opts(sim: Path, out: Path, asset_class: str | None = None) -> LiveOptions:
    return LiveOptions(out=out, replay=(sim,), asset_class=asset_class, address="local")


def test_every_class_with_a_promoted_model_trades_as_its_own_app(tmp_path, sim) -> None:
    settings = load_settings(registry_dir=tmp_path / "registry")
    with pytest.raises(InputError, match="no promoted model for crypto, forex"):
        replay_graphs(_opts(sim, tmp_path), settings)
    _promote(settings.registry_dir, sim, AssetClass.FOREX, "EURUSD")
    [only] = replay_graphs(_opts(sim, tmp_path), settings)  # crypto has no model: not traded
    assert only.asset_class is AssetClass.FOREX and only.symbols == ("EURUSD",)
    one = only.placed(tmp_path, several=False)
    assert (one.app_name, one.route_prefix, one.out) == ("signal", "/", tmp_path)
    _promote(settings.registry_dir, sim, AssetClass.CRYPTO, "BTCUSDT")
    graphs = [
        g.placed(tmp_path, several=True) for g in replay_graphs(_opts(sim, tmp_path), settings)
    ]
    assert [(g.app_name, g.route_prefix, g.out) for g in graphs] == [
        ("signal-crypto", "/crypto", tmp_path / "crypto"),
        ("signal-forex", "/forex", tmp_path / "forex"),
    ]
    assert [g.model.version for g in graphs] == ["lstm-crypto", "lstm-forex"]
    assert all(g.start == g.trade_from and g.start is not None for g in graphs)
    [crypto] = replay_graphs(_opts(sim, tmp_path, "crypto"), settings)
    assert crypto.asset_class is AssetClass.CRYPTO
    urls = api_urls(8000, graphs)
    assert urls["api_forex"] == "http://127.0.0.1:8000/forex"
    assert urls["docs_crypto"] == "http://127.0.0.1:8000/crypto/docs"
    assert api_urls(8000, graphs[:1]) == {
        "api": "http://127.0.0.1:8000", "docs": "http://127.0.0.1:8000/docs"
    }  # fmt: skip


def test_the_summary_of_several_accounts_sums_them_and_keeps_each(tmp_path) -> None:
    def part(bars: int, equity: float, stopped: str = "end_of_replay") -> dict:
        return {"stopped": stopped, "model_version": f"v{bars}", "bars": bars, "signals": bars,
                "decisions": bars, "orders": 1, "fills": 2, "final_equity": equity,
                "risk_state": "ACTIVE", "errors": ["x"] if bars == 2 else []}  # fmt: skip

    opts = LiveOptions(out=tmp_path, address="local")
    both = combined_summary({"crypto": part(2, 10.0), "forex": part(3, 5.0)}, opts, {}, 1.5)
    assert (both["bars"], both["fills"], both["final_equity"]) == (5, 4, 15.0)
    assert both["model_version"] == {"crypto": "v2", "forex": "v3"}
    assert both["errors"] == ["crypto: x"] and both["stopped"] == "end_of_replay"
    assert set(both["classes"]) == {"crypto", "forex"}
    mixed = combined_summary(
        {"crypto": part(2, 1.0, "duration"), "forex": part(3, 1.0)}, opts, {}, 1
    )
    assert mixed["stopped"] == "mixed"
    one = combined_summary({"crypto": part(2, 10.0)}, opts, {"api": "u"}, 1.0)
    assert one["stopped"] == "end_of_replay" and one["bars"] == 2 and "classes" not in one
