"""The control panel in a real browser: headless Chromium (Debian's) driven by Playwright.

A replay of simulator data (paper) feeds the real API on 127.0.0.1; the panel runs with a login
in front of it. The browser signs in, sees the equity chart and a non-empty signals table,
pulls the kill switch and confirms; the API then reports HALTED and the replay, going on,
places no new entry order. Screenshots go to runs/panel/. Nothing downloads a browser build:
without /usr/bin/chromium (``apt-get install chromium``) the test is skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from app.config import UiSettings
from tests.integration.panel_api import PanelApi, free_port, simulate

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "runs" / "panel"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
USER, PASSWORD = "operator", "panel-test-password"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: `apt-get install -y chromium` (Debian's package) to run the browser test",
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PanelApi]:
    served = PanelApi(tmp_path_factory.mktemp("panel-browser"), simulate(), bars=150).start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def panel_url(api: PanelApi) -> Iterator[str]:
    from ui.app import launch

    ui = UiSettings(
        api_url=api.url,
        api_key=SecretStr(api.operate_key),
        user=USER,
        password=SecretStr(PASSWORD),
        port=free_port(),
        refresh_s=2.0,
    )
    served = launch(ui, block=False)
    yield served.url
    served.demo.close()


def test_login_signals_equity_and_the_kill_switch(api: PanelApi, panel_url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1100})
            page.goto(panel_url)
            page.locator("input[type=text]").first.fill(USER)
            page.locator("input[type=password]").fill(PASSWORD)
            page.get_by_role("button", name="Login").click()

            # Overview: the paper badge, the risk state and the equity chart (Plotly)
            page.locator("#mode-badge").wait_for(timeout=30_000)
            assert "PAPER" in page.locator("#mode-badge").inner_text()
            page.locator("#equity-chart .js-plotly-plot").wait_for(timeout=30_000)
            assert page.locator("#equity-chart .scatterlayer .trace").count() >= 2
            assert "ACTIVE" in page.locator("#risk-box .risk-state").inner_text()
            page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

            # Signals: a non-empty table with both tickers, and the candlestick
            page.get_by_role("tab", name="Signals").click()
            table = page.locator("#signals-table")
            sync_api.expect(table).to_contain_text("BTCUSDT", timeout=30_000)
            sync_api.expect(table).to_contain_text("ETHUSDT")
            sync_api.expect(table).to_contain_text("lstm-20250101T000000-aaaaaaaa")
            page.locator("#candle-chart .js-plotly-plot").wait_for(timeout=30_000)
            page.screenshot(path=str(SHOTS / "signals.png"), full_page=True)

            # Controls: kill switch, the confirmation step, the API's answer
            placed_before = len(api.replay.orders_placed)
            page.get_by_role("tab", name="Controls").click()
            page.locator("#halt").click()
            sync_api.expect(page.locator("#confirm-prompt")).to_contain_text(
                "kill switch", timeout=10_000
            )
            page.locator("#confirm").click()
            sync_api.expect(page.locator("#answer")).to_contain_text("HALTED", timeout=15_000)
            sync_api.expect(page.locator("#control-risk .risk-state")).to_contain_text("HALTED")
            page.screenshot(path=str(SHOTS / "controls.png"), full_page=True)
        finally:
            browser.close()

    r = httpx.get(f"{api.url}/v1/risk", headers={"X-API-Key": api.read_key}, timeout=10)
    assert r.json()["state"] == "HALTED"
    assert any(x.startswith("halted:kill_switch") for x in r.json()["reasons"])
    api.replay.run(20)  # the loop goes on: exits only, no new entry
    new = api.replay.orders_placed[placed_before:]
    assert all(o.reduce_only for o in new), [o.client_order_id for o in new]
    assert (
        httpx.get(f"{api.url}/v1/risk", headers={"X-API-Key": api.read_key}).json()["state"]
        == "HALTED"
    )
