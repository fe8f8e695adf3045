"""The panel's callbacks called directly against a real API over HTTP on 127.0.0.1.

One replayed API per module (simulator data through the real risk engine, see panel_api.py);
the panel's client talks to it with an operate key, a read key, a wrong key, to a port where
nothing listens, and to a socket that never answers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from app.types import AssetClass
from tests.integration.panel_api import SYMBOLS, PanelApi, simulate
from ui.callbacks import Panel
from ui.client import ApiClient, ApiError
from ui.views.controls import Command


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PanelApi]:
    served = PanelApi(tmp_path_factory.mktemp("panel-callbacks"), simulate(), bars=120).start()
    yield served
    served.stop()


def panel_for(url: str, key: str | None, timeout_s: float = 5.0) -> Panel:
    return Panel(ApiClient(url, None if key is None else SecretStr(key), timeout_s))


@pytest.fixture(scope="module")
def panel(api: PanelApi) -> Panel:
    return panel_for(api.url, api.operate_key)


def test_overview_shows_the_replay(api: PanelApi, panel: Panel) -> None:
    badge, risk, metrics, fig, status = panel.overview()
    assert "PAPER" in badge and "ACTIVE" in risk
    rows = dict(metrics.values.tolist())
    assert rows["Bars marked"] == "120"
    perf = api.view.performance()
    assert rows["Max drawdown"] == f"{perf.max_drawdown * 100:.2f}%"
    assert len(fig.data[0].x) == 120 and "120 equity points" in status


def test_signals_table_chart_and_headlines(api: PanelApi, panel: Panel) -> None:
    table, tickers, fig, news, status = panel.signals("ETHUSDT")
    assert tickers == list(SYMBOLS) and table["ticker"].tolist() == list(SYMBOLS)
    latest = api.view.signals.read("ETHUSDT").view
    assert table.loc[1, "signal"] == latest.signal.value
    assert table.loc[1, "confidence"] == round(latest.confidence, 4)
    assert fig.data[0].type == "candlestick" and len(fig.data[0].x) == 120
    assert fig.layout.title.text.startswith("ETHUSDT")
    fills = [f for f in api.view.fills(None, 1000) if f.symbol == "ETHUSDT"]
    drawn = sum(len(t.x) for t in fig.data if t.name.startswith("fill"))
    assert drawn == len(fills) > 0
    assert not news.empty and "stale" in status
    # an unknown choice falls back to the first ticker
    assert panel.signals("XRPUSDT")[2].layout.title.text.startswith("BTCUSDT")


def test_portfolio_models_feeds(api: PanelApi, panel: Panel) -> None:
    positions, orders, fills, status = panel.portfolio()
    assert sorted(positions["symbol"]) == sorted(api.replay.positions)
    assert len(orders) == len(api.replay.pending)
    assert len(fills) == min(50, len(api.view.fills(None, 1000)))
    versions, fig, serving, names, mstatus = panel.models()
    assert len(versions) == 2 and "2 versions" in mstatus and len(names) == 2
    frame, switch, classes, fstatus = panel.feeds()
    assert frame["status"].tolist() == ["OK"] and "all ok" in fstatus
    assert switch.to_dict("records") == [
        {"asset_class": "crypto", "feed": "RUNNING", "stopped_at": ""}
    ]
    assert classes == ["crypto"]


def test_halt_resume_reducing_and_promote_through_the_api(api: PanelApi, panel: Panel) -> None:
    command, prompt = panel.ask("halt", "  callback test  ")
    assert command == Command("halt", "callback test") and "kill switch" in prompt
    assert api.view.risk().state.value == "ACTIVE"  # asking does nothing
    assert "HALTED" in panel.confirm(command)
    assert api.view.risk().state.value == "HALTED"
    assert "ACTIVE" in panel.confirm(panel.ask("resume")[0])
    assert "REDUCING" in panel.confirm(panel.ask("reducing_on")[0])
    assert "ACTIVE" in panel.confirm(panel.ask("reducing_off")[0])
    version = panel.models()[3][-1]
    answer = panel.confirm(panel.ask("promote", version)[0])
    assert f"promoted `{version}`" in answer
    assert f"`{version}`" in panel.models()[2]
    assert "not found (404)" in panel.confirm(Command("promote", "no-such-version"))
    assert "choose a command first" in panel.confirm(None)
    assert panel.ask("halt", "")[0] is None


def test_stop_a_feed_goes_stale_then_reducing_and_start_lifts_it(
    api: PanelApi, panel: Panel
) -> None:
    command, prompt = panel.ask("feed_stop", "crypto")
    assert "Stop the `crypto` feed?" in prompt and api.replay.switch.running(AssetClass.CRYPTO)
    answer = panel.confirm(command)
    assert "crypto: stopped" in answer and not api.replay.switch.running(AssetClass.CRYPTO)
    marks = len(api.view.equity(None, 10_000))
    api.replay.run(5)  # 25 min without a bar: past the 15 min limit
    assert len(api.view.equity(None, 10_000)) == marks  # nothing reached the loop
    frame, switch, _, status = panel.feeds()
    assert frame["status"].tolist() == ["STALE"] and switch["feed"].tolist() == ["STOPPED"]
    assert "stopped: crypto" in status
    assert "reducing:feed_stale:crypto" in panel.overview()[1]
    assert "crypto: running" in panel.confirm(panel.ask("feed_start", "crypto")[0])
    api.replay.run(1)
    assert panel.feeds()[0]["status"].tolist() == ["OK"]
    assert "feed_stale" not in panel.overview()[1]
    assert "(404)" in panel.confirm(Command("feed_stop", "stocks"))
    assert panel.ask("feed_stop", "")[0] is None


def test_start_a_research_job_and_follow_it(api: PanelApi, panel: Panel) -> None:
    text, kinds, _ = panel.jobs()
    assert kinds == ["tiny"] and "No research job" in text
    command, prompt = panel.ask("job_start", "tiny")
    assert "Start a `tiny` job?" in prompt
    assert "submitted (local)" in panel.confirm(command)
    deadline = time.monotonic() + 30
    while "SUCCEEDED" not in (text := panel.jobs()[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "**SUCCEEDED**" in text and "report.md" in text
    assert "`version` lstm-tiny" in text and "fold 0: dacc 0.51" in text
    assert "(422)" in panel.confirm(Command("job_start", "no-such-kind"))


def test_a_wrong_key_reads_as_401_everywhere(api: PanelApi) -> None:
    bad = panel_for(api.url, "not-a-key-of-this-api")
    for status in (
        bad.overview()[4],
        bad.signals(None)[4],
        bad.portfolio()[3],
        bad.models()[4],
        bad.feeds()[3],
        bad.jobs()[2],
    ):
        assert status.startswith("**Error:**") and "(401)" in status and "APP_UI__API_KEY" in status
    assert "(401)" in bad.confirm(Command("resume"))
    assert "(401)" in bad.confirm(Command("feed_stop", "crypto"))
    assert "(401)" in bad.confirm(Command("job_start", "tiny"))
    assert "Traceback" not in bad.overview()[4]


def test_a_read_key_watches_but_cannot_command(api: PanelApi) -> None:
    ro = panel_for(api.url, api.read_key)
    assert "PAPER" in ro.overview()[0]
    answer = ro.confirm(Command("halt", "read key"))
    assert "(403)" in answer and "operate key" in answer
    assert api.view.risk().state.value != "HALTED"
    assert "(403)" in ro.confirm(Command("feed_stop", "crypto"))
    assert "(403)" in ro.confirm(Command("job_start", "tiny"))
    assert ro.feeds()[1]["feed"].tolist() == ["RUNNING"] and ro.jobs()[1] == ["tiny"]


def test_api_down_reads_as_not_reachable() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = panel_for(f"http://127.0.0.1:{port}", "whatever-key-123456")
    badge, risk, _, fig, status = down.overview()
    assert "not reachable" in status and "python -m app live" in status
    assert "MODE UNKNOWN" in badge and "UNKNOWN" in risk
    assert "not reachable" in down.confirm(Command("halt", "x"))
    assert "not reachable" in down.confirm(Command("feed_start", "crypto"))
    assert "not reachable" in down.jobs()[2] and down.feeds()[2] == []
    table, tickers, *_ = down.signals(None)
    assert table.empty and tickers == []


def test_a_silent_api_reads_as_a_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        slow = panel_for(url, "whatever-key-123456", timeout_s=0.3)
        status = slow.feeds()[3]
        assert "did not answer" in status and "0.3 s" in status
        with pytest.raises(ApiError) as err:
            ApiClient(url, None, 0.3).risk()
        assert err.value.kind == "timeout"


def test_the_key_is_in_no_message_or_repr(api: PanelApi) -> None:
    client = ApiClient(api.url, SecretStr(api.operate_key))
    assert api.operate_key not in repr(client)
    bad = ApiClient(api.url, SecretStr(api.operate_key + "x"))
    with pytest.raises(ApiError) as err:
        bad.signals()
    assert api.operate_key not in str(err.value) and err.value.status == 401
