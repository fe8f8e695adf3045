"""``python -m app broker status`` against the loopback Binance venue, a dead address, no keys."""

from __future__ import annotations

import json
import socket

import pytest

from app.cli.main import main
from tests.support.binance_loopback import BinanceState, binance_loopback


def test_status_prints_balances_and_open_orders_last_line_json(monkeypatch, capsys) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "key-not-printed")
    monkeypatch.setenv("BINANCE_API_SECRET", "secret-not-printed")
    state = BinanceState({"BTCUSDT": 50_000.0, "ETHUSDT": 3_000.0}, {"USDT": 1000.0, "BTC": 0.5})
    with binance_loopback(state) as url:
        code = main(["broker", "status", "--venue", "binance", "--venue-url", url])
    out = capsys.readouterr()
    assert code == 0
    summary = json.loads(out.out.strip().splitlines()[-1])
    assert summary["connected"] and summary["balances"]["USDT"] == 1000.0
    assert summary["positions"]["BTCUSDT"]["qty"] == 0.5
    assert "secret-not-printed" not in out.out + out.err


def test_nothing_listening_exits_1_naming_the_address(monkeypatch, capsys) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "k")
    monkeypatch.setenv("BINANCE_API_SECRET", "s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SystemExit) as exc:
        main(["broker", "status", "--venue", "binance", "--venue-url", f"http://127.0.0.1:{port}"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"127.0.0.1:{port}" in err[0] and "Traceback" not in err[0]


def test_missing_keys_exit_2_naming_the_variables(monkeypatch, capsys) -> None:
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["broker", "status", "--venue", "binance"])
    assert exc.value.code == 2
    assert "BINANCE_API_KEY and BINANCE_API_SECRET" in capsys.readouterr().err


def test_ib_with_nothing_listening_exits_1_with_one_line(tmp_path) -> None:
    import os
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "APP_IB__PORT": str(port), "APP_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "app", "broker", "status", "--venue", "ib"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and f"127.0.0.1:{port}" in err[0], done.stderr
