"""``python -m app live --address local`` on a simulator folder of two asset classes (crypto:
BTCUSDT, ETHUSDT; forex: EURUSD), each with its own promoted model, through the session's Ray
and Serve (``ray_serve``): one feed actor and one Serve app (ingress -> Model -> Risk ->
execution actor: one account) per class, each class's API on its own prefix of Serve's HTTP
proxy while it runs (a ticker of the other class is a 404 there). The crypto feed actor
is killed mid-replay (``ray.kill(..., no_restart=False)``) and comes back from its checkpoint,
and once bars flow again a second registered version is promoted through
``POST /v1/models/promote`` while the signal API is polled. The --out signals are the old
version's up to one bar and the new one's from the next bar on, each segment equal to
``predict`` of its version (probabilities to 1e-6), and the fills equal ``backtest --signals``
(exactly: no bar close lost or traded twice, no order duplicated); the forex account's signals
equal ``predict`` of its model and its fills ``backtest --signals --asset-class forex``. With
``--retrain-every`` each class retrains at the last bar close, as a Ray task on the store
actor's bars of its tickers; asked for an impossible gain, each keeps its served version."""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import ray

from app.cli.main import main
from app.live.replay import load_replay
from app.models.registry import (
    list_versions,
    load_version,
    promoted_versions,
    save_version,
)
from app.models.registry import promote as registry_promote
from app.models.text_loader import cached_sentiment_model
from app.pipeline.predict import predict_inputs, predict_signals
from app.tuning.data_loading import load_data
from app.types import AssetClass
from app.worker_serve import APP_NAME
from tests.integration.test_live_cli import SETTINGS, _config, _last_json
from tests.integration.test_live_retrain import RETRAIN_TOML
from tests.unit.live.session_builders import tiny_model

pytestmark = [pytest.mark.timeout(600)]
KEY = "operate-key-of-the-serve-worker-test"
NEW = "lstm-test-2"  # registered beside the served crypto version, promoted mid-replay
FX = "lstm-forex-1"  # the forex account's model
CRYPTO = ("BTCUSDT", "ETHUSDT")


@pytest.fixture(scope="module")
def sim_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sim") / "sim"  # 576 bar closes a ticker
    args = ["simulate", "--out", str(folder), "--days", "2", "--seed", "3", "--symbols"]
    assert main([*args, *CRYPTO, "EURUSD"]) == 0
    return folder


def test_live_on_ray_serve_promotes_mid_replay_equals_predict_and_backtest(
    tmp_path,
    sim_folder,
    ray_serve,
    capsys,
    monkeypatch,  # noqa: F811
) -> None:
    monkeypatch.setenv("APP_API__KEYS", f'["{KEY}"]')
    registry = tmp_path / "registry"
    data = load_data([sim_folder], CRYPTO, AssetClass.CRYPTO, False, False, settings=SETTINGS)
    replayed = load_replay(sim_folder)
    model = tiny_model(data.bars, sharp=1.0)  # the served crypto version
    new = tiny_model(data.bars, NEW, seed=2, sharp=1.0)  # other calls than the served; trades
    fx = tiny_model(
        {"EURUSD": replayed.bars["EURUSD"]}, FX, sharp=1.0, asset_class=AssetClass.FOREX,
        symbols=("EURUSD",),
    )  # fmt: skip
    for m in (model, new, fx):
        save_version(registry, m.bundle, version=m.version)
    registry_promote(registry, model.version)
    registry_promote(registry, FX)
    assert promoted_versions(registry) == {AssetClass.CRYPTO: model.version, AssetClass.FOREX: FX}
    config = _config(tmp_path, registry)
    config.write_text(config.read_text() + RETRAIN_TOML + "min_gain = 1.0\n")  # dacc <= 1
    port = int(ray_serve.rsplit(":", 1)[1])
    out = tmp_path / "live"
    seen: list[tuple[int, str, str]] = []  # every crypto GET: (status, model_version, as_of)
    forex: dict[str, list[int]] = {"EURUSD": [], "BTCUSDT": []}  # the forex account's answers
    killed: list[str] = []  # the as_of of the newest signal when the feed was killed
    promotion: dict[str, object] = {}  # the POST's answer; "during": the GETs around it
    done = threading.Event()

    def promote() -> None:  # the operator's promotion, while the poller keeps asking
        with httpx.Client(base_url=ray_serve, timeout=30) as c:
            body = {"version": NEW}
            r = c.post("/crypto/v1/models/promote", json=body, headers={"X-API-Key": KEY})
            promotion["status"], promotion["body"] = r.status_code, r.json()

    def poll() -> None:  # the API of the running graph, on Serve's proxy
        promoter = None
        during_from = after = 0
        with httpx.Client(base_url=ray_serve, timeout=30) as c:
            while not done.is_set():
                try:
                    r = c.get("/crypto/v1/signals/BTCUSDT", headers={"X-API-Key": KEY})
                    body = r.json() if r.status_code == 200 else {}
                    seen.append(
                        (r.status_code, body.get("model_version", ""), body.get("as_of", ""))
                    )
                except httpx.HTTPError:
                    if promoter is not None and "during" not in promotion:
                        seen.append((0, "", ""))  # a failed request around the promotion
                    # else: the app is not deployed yet, or already deleted
                if promoter is None or "during" in promotion:  # not while promoting
                    for ticker, codes in forex.items():
                        with contextlib.suppress(httpx.HTTPError):
                            path = f"/forex/v1/signals/{ticker}"
                            codes.append(c.get(path, headers={"X-API-Key": KEY}).status_code)
                ok = [s for s in seen if s[0] == 200]
                if not killed and len(ok) >= 3:  # bars flow: kill the feed mid-replay
                    feed = ray.get_actor(f"{APP_NAME}-feed-crypto")
                    ray.kill(feed, no_restart=False)
                    killed.append(ok[-1][2])
                elif killed and promoter is None and _hours(killed[0], ok[-1][2]) >= 8:
                    # the restarted feed's bars reach the API: promote while they flow
                    during_from = len(seen)
                    promoter = threading.Thread(target=promote)
                    promoter.start()
                elif promoter is not None and not promoter.is_alive() and "during" not in promotion:
                    after += 1
                    if after >= 10:  # ten GETs once the POST has answered
                        promotion["during"] = seen[during_from:]
                done.wait(0.02 if promoter is not None and "during" not in promotion else 0.2)
        if promoter is not None:
            promoter.join(timeout=30)

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
    statuses = [s for s, _, _ in seen]
    assert 200 in statuses and 500 not in statuses and 401 not in statuses, statuses
    summary = _last_json(printed)
    assert summary["stopped"] == "end_of_replay" and summary["errors"] == [], summary["errors"]
    assert summary["bars"] == sum(len(f) for f in replayed.bars.values())  # both classes
    assert set(summary["classes"]) == {"crypto", "forex"}
    part = summary["classes"]["crypto"]
    assert killed and part["address"] == "local" and part["feed"]["starts"] == 2
    assert summary["classes"]["forex"]["feed"]["starts"] == 1  # not killed
    assert part["bars"] == sum(len(f) for f in data.bars.values())
    assert 200 in forex["EURUSD"] and 500 not in forex["EURUSD"], forex
    assert 404 in forex["BTCUSDT"] and 200 not in forex["BTCUSDT"], forex  # not its account

    # the promotion answered, and no request around it failed or saw the old version come back
    assert promotion.get("status") == 200, promotion
    assert promotion["body"] == {"previous": model.version, "current": NEW}
    during = promotion.get("during", [])  # from the POST to ten GETs after its answer
    assert len(during) >= 10 and all(s == 200 for s, _, _ in during), during
    versions = [v for s, v, _ in seen if s == 200]
    assert NEW in versions, "the API never showed the promoted version"
    first_new = versions.index(NEW)
    assert set(versions[:first_new]) == {model.version} and set(versions[first_new:]) == {NEW}
    assert summary["model_version"] == {"crypto": NEW, "forex": FX}
    assert promoted_versions(registry) == {AssetClass.CRYPTO: NEW, AssetClass.FOREX: FX}

    # signals.csv: the old version up to one bar, the new one from the next bar on, every bar
    # once, each segment equal to `predict` of its version on the same bars
    text = cached_sentiment_model(SETTINGS.sentiment, registry)
    inputs = predict_inputs(replayed, AssetClass.CRYPTO, text)  # as live
    want = {
        v: predict_signals(b, inputs, model_version=v).signals
        for v, b in ((model.version, model.bundle), (NEW, load_version(registry, NEW)))
    }
    got = pd.read_csv(out / "crypto" / "signals.csv")
    assert len(got) == part["signals"]
    switch, bars = _check_one_switch(got, want, model.version, NEW)
    assert 96 <= switch <= bars - 20, (switch, bars)  # 8 h after the restart, before the end
    _check_fills_equal_backtest(tmp_path, sim_folder, config, out / "crypto", part, capsys)

    # the forex account: its own model over its own bars, and its own fills
    fx_part = summary["classes"]["forex"]
    fx_want = predict_signals(
        fx.bundle, predict_inputs(replayed, AssetClass.FOREX, text), model_version=FX
    ).signals
    fx_got = pd.read_csv(out / "forex" / "signals.csv")
    assert set(fx_got["model_version"]) == {FX} and len(fx_got) == len(fx_want) > 300
    assert pd.to_datetime(fx_got["ts"], utc=True).tolist() == fx_want["ts"].tolist()
    for col in ("p_up", "p_down", "p_flat"):
        np.testing.assert_allclose(fx_got[col], fx_want[col], atol=1e-6)
    _check_fills_equal_backtest(tmp_path, sim_folder, config, out / "forex", fx_part, capsys, 0)
    assert fx_part["retrain"]["errors"] == [] and len(fx_part["retrain"]["runs"]) == 1

    retrain = part["retrain"]
    assert retrain["errors"] == [] and not retrain["running"]
    (run,) = retrain["runs"]  # on every stored bar: 576 a ticker, 2 folds of the quick preset
    assert run["at"] == "2025-01-08T00:00:00+00:00" and run["serving"] == NEW
    assert run["candidate_score"] is not None and run["serving_score"] is not None
    assert not run["promoted"] and "does not beat" in run["reason"]
    assert promoted_versions(registry)[AssetClass.CRYPTO] == NEW  # the served version stays
    rec = {v.version: v for v in list_versions(registry)}[run["candidate"]].metrics["retrain"]
    assert (rec["candidate"], rec["serving"]) == (run["candidate_score"], run["serving_score"])
    report = json.loads((out / "crypto" / "retrain" / "retrain-001" / "report.json").read_text())
    assert report["data"]["bars"] == {"BTCUSDT": 576, "ETHUSDT": 576}  # via the store actor
    assert report["data"]["source"] == f"store:duckdb:///{out / 'bars.db'}"


def _check_one_switch(
    got: pd.DataFrame, want: dict[str, pd.DataFrame], old: str, new: str
) -> tuple[int, int]:
    """``got`` (signals.csv) scores the bars of ``predict`` (``want``: version -> its signals)
    once each, every bar by one version: ``old`` up to one bar, ``new`` from the next on, each
    segment's probabilities equal to its version's ``predict`` (1e-6). (switch index, bars)."""
    ts = pd.to_datetime(got["ts"], utc=True)
    assert len(got) == len(want[old]) and got["ticker"].tolist() == want[old]["ticker"].tolist()
    assert ts.tolist() == want[old]["ts"].tolist()  # none missing, none twice
    per_bar = got.assign(ts=ts).groupby("ts", sort=True)["model_version"]
    assert (per_bar.nunique() == 1).all(), "a bar scored by two versions"
    by_bar = per_bar.first().tolist()
    assert new in by_bar, f"no bar scored by {new}"
    switch = by_bar.index(new)
    assert set(by_bar[:switch]) == {old} and set(by_bar[switch:]) == {new}, by_bar
    for version in (old, new):
        rows = (got["model_version"] == version).to_numpy()
        seg = got[rows].reset_index(drop=True)
        ref = want[version][want[version]["ts"].isin(ts[rows])].reset_index(drop=True)
        assert len(seg) == len(ref) and seg["ticker"].tolist() == ref["ticker"].tolist()
        for col in ("p_up", "p_down", "p_flat"):
            np.testing.assert_allclose(seg[col], ref[col], atol=1e-6, err_msg=version)
    return switch, len(by_bar)


def _hours(start: str, end: str) -> float:
    """Market hours between two signals' ``as_of``."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600


def _check_fills_equal_backtest(  # type: ignore[no-untyped-def]
    tmp_path: Path, sim_folder: Path, config: Path, out: Path, summary: dict, capsys, least=20
) -> None:
    """One account's fills, equity and decisions (``out``: its folder) against ``backtest
    --signals`` of its signals on its asset class's bars."""
    assert summary["fills"] >= least and summary["orders"] >= summary["fills"] // 2
    bt = tmp_path / f"bt-{out.name}"
    args = ["backtest", "--prices", str(sim_folder), "--signals", str(out / "signals.csv")]
    args += ["--asset-class", out.name]
    assert main([*args, "--config", str(config), "--out", str(bt)]) == 0
    capsys.readouterr()
    live_fills, bt_fills = pd.read_csv(out / "fills.csv"), pd.read_csv(bt / "fills.csv")
    assert list(live_fills.columns) == list(bt_fills.columns)
    assert len(live_fills) == len(bt_fills) == summary["fills"]
    for col in ("ts", "ticker", "side", "price", "qty", "fee"):
        assert live_fills[col].tolist() == bt_fills[col].tolist(), col
    live_eq, bt_eq = pd.read_csv(out / "equity.csv"), pd.read_csv(bt / "equity.csv")
    assert list(live_eq.columns) == list(bt_eq.columns)
    np.testing.assert_allclose(live_eq["equity"], bt_eq["equity"], atol=1e-6)
    decisions = pd.read_csv(out / "decisions.csv")
    assert list(decisions.columns) == ["ts", "ticker", "action", "qty", "reasons"]
    assert summary["decisions"] == len(decisions) >= summary["signals"]
