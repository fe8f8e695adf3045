"""The Serve graph for real (local Ray, Serve's HTTP proxy on 127.0.0.1): bar closes through
ingress -> Model deployment -> Risk deployment -> the paper execution actor give the fills
``run_backtest`` gives on the graph's own signals (exactly); a promotion under a load of GET
requests fails none of them and the signals carry the new version from the next bar on (and the
ingress' ``promote``, the worker's --retrain-every path, is the route's promotion); an operator
halt reaches the Risk deployment, whose state file says so."""

from __future__ import annotations

import json
import threading

import httpx
import pandas as pd
import pytest

from app.backtest.engine import BacktestConfig, run_backtest
from app.config import load_settings
from app.live.records import signals_frame
from app.live.series import SeriesReplay
from app.serve.auth import resolve_keys
from app.serve.graph import build_app
from app.serve.view import Promotion
from tests.unit.live.session_builders import save_promoted, sim_bars, tiny_model

pytestmark = [pytest.mark.timeout(600)]
LOAD_BARS = 40  # GET load from this many bar closes before the promotion to as many after


def test_graph_trades_like_the_session_and_promotes_under_load(tmp_path, ray_serve) -> None:
    from ray import serve

    bars, classes = sim_bars(days=1)  # 288 bar closes: trades, promotion at the 144th
    one, two = tiny_model(bars, "lstm-v1", seed=0), tiny_model(bars, "lstm-v2", seed=1)
    registry_dir = tmp_path / "registry"
    save_promoted(registry_dir, two)
    save_promoted(registry_dir, one)  # v1 serves first
    settings = resolve_keys(
        load_settings(registry_dir=registry_dir, api={"host": "127.0.0.1"}), announce=lambda _: None
    )
    key = settings.api.keys[0].get_secret_value()
    replay = SeriesReplay(bars, classes, one)
    closes = list(replay.closes())
    app = build_app(
        settings,
        asset_classes=classes,
        calendar=next(iter(classes.values())),
        state_dir=tmp_path / "state",
        replay_start=closes[0].ts,
    )
    handle = serve.run(app, name="live", route_prefix="/")
    headers = {"X-API-Key": key}
    promote_at = len(closes) // 2
    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal answered
        with httpx.Client(base_url=ray_serve, timeout=30) as c:
            while not stop.is_set():
                r = c.get("/v1/signals/BTCUSDT", headers=headers)
                if r.status_code not in (200, 404):  # 404 until the first signal
                    failures.append(f"{r.status_code} {r.text[:100]}")
                answered += 1

    try:
        workers = [threading.Thread(target=load) for _ in range(4)]
        versions = []
        for i, close in enumerate(closes):
            if i == promote_at - LOAD_BARS:  # the load spans the promotion, both ways
                for w in workers:
                    w.start()
            if i == promote_at + LOAD_BARS:
                stop.set()
            step = handle.on_bar_close.remote(close).result()
            versions.append(step.model_version)
            if i == promote_at:
                with httpx.Client(base_url=ray_serve, timeout=30) as c:
                    r = c.post("/v1/models/promote", json={"version": "lstm-v2"}, headers=headers)
                    assert r.status_code == 200, r.text
        for w in workers:
            w.join(timeout=30)
        assert not failures and answered > 50
        assert set(versions[: promote_at + 1]) == {"lstm-v1"}
        assert set(versions[promote_at + 1 :]) == {"lstm-v2"}
        records = handle.records.remote().result()
        by_bar = {s.ts: s.model_version for s in records.signals}
        first_v2 = closes[promote_at + 1].ts
        assert all((v == "lstm-v2") == (ts >= first_v2) for ts, v in by_bar.items())
        with httpx.Client(base_url=ray_serve, timeout=30) as c:
            body = c.get("/v1/signals/BTCUSDT", headers=headers).json()
            assert body["model_version"] == "lstm-v2" and body["stale"] is False
            assert c.get("/v1/signals/BTCUSDT").status_code == 401
            assert c.get("/healthz").status_code == 200
        assert records.bars == sum(len(f) for f in bars.values())
        assert records.fills and records.orders >= len(records.fills) // 2
        assert records.equity[-1].ts == closes[-1].ts
        signals = signals_frame(records)[["ts", "ticker", "signal", "confidence"]]
        bt = run_backtest(bars, signals, classes, BacktestConfig()).fills
        live = pd.DataFrame(handle.fill_rows.remote().result(), columns=list(bt.columns))
        assert len(live) == len(bt) > 5
        for col in ("price", "qty", "fee", "side"):
            assert live[col].tolist() == bt[col].tolist(), col
        assert pd.to_datetime(live["ts"], utc=True).tolist() == bt["ts"].tolist()
        assert handle.promote.remote("lstm-v1").result() == Promotion("lstm-v2", "lstm-v1")
        with httpx.Client(base_url=ray_serve, timeout=30) as c:
            listed = c.get("/v1/models", headers=headers).json()["models"]
        assert [m["version"] for m in listed if m["promoted"]] == ["lstm-v1"], listed
        saved = tmp_path / "state" / "risk_state.json"  # written by the Risk deployment
        assert json.loads(saved.read_text())["kill_reason"] is None
        with httpx.Client(base_url=ray_serve, timeout=30) as c:
            r = c.post("/v1/risk/halt", json={"reason": "ops"}, headers=headers)
            assert r.status_code == 200 and r.json()["state"] == "HALTED", r.text
            assert c.get("/v1/risk", headers=headers).json()["state"] == "HALTED"
        assert json.loads(saved.read_text())["kill_reason"] == "ops"
    finally:
        stop.set()
        serve.delete("live")
