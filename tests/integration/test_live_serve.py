"""``python -m app live --address local`` on a simulator folder, through the session's Ray and
Serve (``ray_serve``): the feed actor sends every bar close to the Serve graph (ingress -> Model
-> Risk -> execution actor), the API answers on Serve's HTTP proxy while it runs, the feed actor
is killed mid-replay (``ray.kill(..., no_restart=False)``) and comes back from its checkpoint,
and the --out files still equal ``predict`` (probabilities to 1e-6) and ``backtest --signals``
(fills exactly: no bar close lost or traded twice, no order duplicated), checked by the plain
worker's test helper. With ``--retrain-every`` a retrain runs at the last bar close, as a Ray
task on the store actor's bars; asked for an impossible gain, it keeps the served version."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
import ray

from app.cli.main import main
from app.models.registry import list_versions, promoted_version
from app.worker_serve import APP_NAME
from tests.integration.test_live_cli import (
    _last_json,
    check_live_equals_predict_and_backtest,
    make_sim,
    promoted_config,
)
from tests.integration.test_live_retrain import RETRAIN_TOML

pytestmark = [pytest.mark.timeout(600)]
KEY = "operate-key-of-the-serve-worker-test"


@pytest.fixture(scope="module")
def sim_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sim(tmp_path_factory.mktemp("sim") / "sim", days=2)  # 576 bar closes


def test_live_on_ray_serve_equals_predict_and_backtest(
    tmp_path,
    sim_folder,
    ray_serve,
    capsys,
    monkeypatch,  # noqa: F811
) -> None:
    monkeypatch.setenv("APP_API__KEYS", f'["{KEY}"]')
    model, config = promoted_config(tmp_path, sim_folder)
    config.write_text(config.read_text() + RETRAIN_TOML + "min_gain = 1.0\n")  # dacc <= 1
    port = int(ray_serve.rsplit(":", 1)[1])
    out = tmp_path / "live"
    seen: list[int] = []
    killed: list[str] = []
    done = threading.Event()

    def poll() -> None:  # the API of the running graph, on Serve's proxy
        with httpx.Client(base_url=ray_serve, timeout=30) as c:
            while not done.is_set():
                try:
                    r = c.get("/v1/signals/BTCUSDT", headers={"X-API-Key": KEY})
                    seen.append(r.status_code)
                except httpx.HTTPError:
                    pass  # the app is not deployed yet, or already deleted
                if not killed and seen.count(200) >= 3:  # bars flow: kill the feed mid-replay
                    feed = ray.get_actor(f"{APP_NAME}-feed-crypto")
                    ray.kill(feed, no_restart=False)
                    killed.append("feed")
                done.wait(0.2)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        argv = ["live", "--config", str(config), "--address", "local", "--speed", "max"]
        argv += ["--replay", str(sim_folder), "--port", str(port), "--out", str(out)]
        argv += ["--retrain-every", "2875m"]  # 2 days less a bar: at the last bar's close
        assert main(argv) == 0
    finally:
        done.set()
        poller.join(timeout=30)
    printed = capsys.readouterr().out
    assert f"signal API: {ray_serve}" in printed and "Ray Serve" in printed
    assert 200 in seen and 500 not in seen and 401 not in seen, seen  # 404/503: not deployed
    summary = _last_json(printed)
    assert killed and summary["address"] == "local" and summary["feed"]["starts"] == 2
    check_live_equals_predict_and_backtest(
        tmp_path, sim_folder, model, config, out, summary, capsys
    )
    retrain = summary["retrain"]
    assert retrain["errors"] == [] and not retrain["running"]
    (run,) = retrain["runs"]  # on every stored bar: 576 a ticker, 2 folds of the quick preset
    assert run["at"] == "2025-01-08T00:00:00+00:00" and run["serving"] == model.version
    assert run["candidate_score"] is not None and run["serving_score"] is not None
    assert not run["promoted"] and "does not beat" in run["reason"]
    registry = tmp_path / "registry"
    assert promoted_version(registry) == model.version  # the served version stays
    rec = {v.version: v for v in list_versions(registry)}[run["candidate"]].metrics["retrain"]
    assert (rec["candidate"], rec["serving"]) == (run["candidate_score"], run["serving_score"])
    report = json.loads((out / "retrain" / "retrain-001" / "report.json").read_text())
    assert report["data"]["bars"] == {"BTCUSDT": 576, "ETHUSDT": 576}  # via the store actor
    assert report["data"]["source"] == f"store:duckdb:///{out / 'bars.db'}"
