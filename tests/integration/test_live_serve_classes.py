"""``python -m app live --address local`` on a recording of two asset classes (crypto and forex),
each with its own promoted model: one feed actor and one Serve app (ingress, Model, Risk,
execution actor: one account) per class, the API of each on its own prefix of Serve's proxy,
and each class's --out files equal to ``predict`` with its model (probabilities to 1e-6) and to
``backtest --signals`` on its own bars (fills exactly)."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pandas as pd
import pytest

from app.cli.main import main
from app.live.replay import load_replay
from app.models.registry import promote, promoted_versions, save_version
from app.models.text_loader import cached_sentiment_model
from app.pipeline.predict import predict_inputs, predict_signals
from app.types import AssetClass
from tests.integration.test_live_cli import SETTINGS, _config, _last_json
from tests.unit.live.session_builders import tiny_model

pytestmark = [pytest.mark.timeout(600)]
KEY = "operate-key-of-the-class-graphs-test"
CLASSES = {AssetClass.CRYPTO: ("BTCUSDT", "ETHUSDT"), AssetClass.FOREX: ("EURUSD",)}


def test_one_feed_and_one_account_per_asset_class(tmp_path, ray_serve, capsys, monkeypatch) -> None:
    monkeypatch.setenv("APP_API__KEYS", f'["{KEY}"]')
    sim = tmp_path / "sim"
    symbols = [s for syms in CLASSES.values() for s in syms]
    assert (
        main(["simulate", "--out", str(sim), "--days", "1", "--seed", "3", "--symbols", *symbols])
        == 0
    )
    replayed = load_replay(sim)
    registry = tmp_path / "registry"
    models = {}
    for cls, syms in CLASSES.items():
        bars = {s: replayed.bars[s] for s in syms}
        models[cls] = tiny_model(
            bars, f"lstm-{cls.value}", sharp=1.0, asset_class=cls, symbols=syms
        )
        save_version(registry, models[cls].bundle, version=models[cls].version)
        promote(registry, models[cls].version)
    assert promoted_versions(registry) == {c: m.version for c, m in models.items()}
    config = _config(tmp_path, registry)
    port = int(ray_serve.rsplit(":", 1)[1])
    out = tmp_path / "live"
    seen: dict[str, list[int]] = {
        "/crypto/v1/signals/BTCUSDT": [],
        "/forex/v1/signals/EURUSD": [],
        "/forex/v1/signals/BTCUSDT": [],
    }
    done = threading.Event()

    def poll() -> None:  # each class's API on its own prefix, while the replay runs
        with httpx.Client(base_url=ray_serve, timeout=30) as c:
            while not done.is_set():
                for path, codes in seen.items():
                    try:
                        codes.append(c.get(path, headers={"X-API-Key": KEY}).status_code)
                    except httpx.HTTPError:
                        pass  # not deployed yet, or already deleted
                done.wait(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        argv = ["live", "--config", str(config), "--address", "local", "--speed", "max"]
        argv += ["--replay", str(sim), "--port", str(port), "--out", str(out)]
        assert main(argv) == 0
    finally:
        done.set()
        poller.join(timeout=30)
    summary = _last_json(capsys.readouterr().out)
    assert summary["stopped"] == "end_of_replay" and summary["errors"] == []
    assert set(summary["classes"]) == {"crypto", "forex"}
    assert summary["model_version"] == {c.value: m.version for c, m in models.items()}
    assert summary["bars"] == sum(len(f) for f in replayed.bars.values())
    assert 200 in seen["/crypto/v1/signals/BTCUSDT"] and 200 in seen["/forex/v1/signals/EURUSD"]
    assert 200 not in seen["/forex/v1/signals/BTCUSDT"]  # a crypto ticker: not this account's
    assert 404 in seen["/forex/v1/signals/BTCUSDT"]

    text = cached_sentiment_model(SETTINGS.sentiment, registry)
    total_fills = 0
    for cls, syms in CLASSES.items():
        part, folder = summary["classes"][cls.value], out / cls.value
        assert part["errors"] == [] and part["bars"] == sum(len(replayed.bars[s]) for s in syms)
        got = pd.read_csv(folder / "signals.csv")
        want = predict_signals(
            models[cls].bundle,
            predict_inputs(replayed, cls, text),
            model_version=models[cls].version,
        ).signals
        assert set(got["ticker"]) == set(syms) and set(got["model_version"]) == {
            models[cls].version
        }
        assert len(got) == len(want) == part["signals"]
        assert got["ticker"].tolist() == want["ticker"].tolist()
        assert pd.to_datetime(got["ts"], utc=True).tolist() == want["ts"].tolist()
        for col in ("p_up", "p_down", "p_flat"):
            np.testing.assert_allclose(got[col], want[col], atol=1e-6)
        bt = tmp_path / f"bt-{cls.value}"
        args = ["backtest", "--prices", str(sim), "--signals", str(folder / "signals.csv")]
        args += ["--asset-class", cls.value, "--config", str(config), "--out", str(bt)]
        assert main(args) == 0
        capsys.readouterr()
        live_fills, bt_fills = pd.read_csv(folder / "fills.csv"), pd.read_csv(bt / "fills.csv")
        assert len(live_fills) == len(bt_fills) == part["fills"]
        for col in ("ts", "ticker", "side", "price", "qty", "fee"):
            assert live_fills[col].tolist() == bt_fills[col].tolist(), (cls, col)
        total_fills += part["fills"]
    assert total_fills > 10 and summary["fills"] == total_fills
