"""The control panel in a real browser over the REAL live worker: headless Chromium (Debian's)
driven by Playwright.

``python -m app live`` replays a small simulator folder in paper mode (a promoted tiny model,
the API on a free loopback port with its one-time key) and starts the panel beside it, which it
hands that key; the panel asks for a login. The browser signs in, sees the paper badge, the
equity chart and a non-empty signals table, pulls the kill switch and confirms; the API then
reports HALTED and, while the replay goes on, the worker places no new entry order (exits
only). Screenshots go to runs/panel/. Nothing downloads a browser build: without
/usr/bin/chromium (``apt-get install chromium``) the test is skipped.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.live.panel_process import free_port
from tests.integration.live_worker import LiveWorker, promoted_config, sim_folder

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "runs" / "panel"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
USER, PASSWORD = "operator", "panel-test-password"
TRADE_FROM = "2025-01-06T18:00:00Z"  # the features' warm-up before it replays unpaced

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: `apt-get install -y chromium` (Debian's package) to run the browser test",
)


def _wait(what: str, ok, timeout_s: float = 60.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while not (got := ok()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)
    return got


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveWorker]:
    root = tmp_path_factory.mktemp("panel-live")
    sim = sim_folder(root, days=3, news_per_day=6)  # a runway for a slow machine
    env = {"APP_UI__USER": USER, "APP_UI__PASSWORD": PASSWORD, "APP_UI__REFRESH_S": "2"}
    live = LiveWorker(
        root,
        sim,
        promoted_config(root, sim),
        speed=4,
        panel_port=free_port(),
        duration_s=420,
        env=env,
        replay_from=TRADE_FROM,
    )
    yield live.start(timeout_s=300)  # Gradio takes a while on a loaded machine
    live.stop()


def test_login_signals_equity_and_the_kill_switch(worker: LiveWorker) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    _wait("signals", lambda: worker.get("/v1/signals")["signals"])
    _wait("equity points", lambda: len(worker.get("/v1/equity")["points"]) >= 5)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1100})
            page.goto(worker.panel_url)
            page.locator("input[type=text]").first.fill(USER)
            page.locator("input[type=password]").fill(PASSWORD)
            page.get_by_role("button", name="Login").click()

            # Overview: the paper badge, the risk state and the equity chart (Plotly)
            page.locator("#mode-badge").wait_for(timeout=60_000)
            assert "PAPER" in page.locator("#mode-badge").inner_text()
            page.locator("#equity-chart .js-plotly-plot").wait_for(timeout=60_000)
            assert page.locator("#equity-chart .scatterlayer .trace").count() >= 2
            assert "ACTIVE" in page.locator("#risk-box .risk-state").inner_text()
            page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

            # Signals: a non-empty table with both tickers and the served version
            page.get_by_role("tab", name="Signals").click()
            table = page.locator("#signals-table")
            sync_api.expect(table).to_contain_text("BTCUSDT", timeout=60_000)
            sync_api.expect(table).to_contain_text("ETHUSDT")
            sync_api.expect(table).to_contain_text("lstm-test-1")
            page.locator("#candle-chart .js-plotly-plot").wait_for(timeout=60_000)
            page.screenshot(path=str(SHOTS / "signals.png"), full_page=True)

            # Controls: kill switch, the confirmation step, the API's answer
            page.get_by_role("tab", name="Controls").click()
            page.locator("#halt").click()
            sync_api.expect(page.locator("#confirm-prompt")).to_contain_text(
                "kill switch", timeout=20_000
            )
            page.locator("#confirm").click()
            sync_api.expect(page.locator("#answer")).to_contain_text("HALTED", timeout=30_000)
            orders_at_halt = {o["client_order_id"] for o in worker.get("/v1/orders")["orders"]}
            sync_api.expect(page.locator("#control-risk .risk-state")).to_contain_text(
                "HALTED", timeout=30_000
            )
            page.screenshot(path=str(SHOTS / "controls.png"), full_page=True)
        finally:
            browser.close()

    risk = worker.get("/v1/risk")
    assert risk["state"] == "HALTED"
    assert any(x.startswith("halted:kill_switch") for x in risk["reasons"])
    last_bar = worker.get("/v1/feeds")["feeds"][0]["last_bar_ts"]
    _wait(  # the loop goes on: three more bars through model -> risk -> execution
        "three more bars",
        lambda: worker.get("/v1/equity", since=last_bar)["points"][3:],
    )
    new = [
        o
        for o in worker.get("/v1/orders", limit=1000)["orders"]
        if o["client_order_id"] not in orders_at_halt
    ]
    assert all(o["reduce_only"] for o in new), new  # exits (the flatten) only, no entry
    assert worker.get("/v1/risk")["state"] == "HALTED"
    assert worker.stop() == 0, worker.lines[-20:]
    assert not worker.left_behind  # the worker ended its panel child
    summary = worker.summary()
    assert summary["stopped"] in ("signal", "end_of_replay"), summary["stopped"]
    assert summary["risk_state"] == "HALTED" and summary["errors"] == []
    assert summary["urls"]["panel"] == worker.panel_url
