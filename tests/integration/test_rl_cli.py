"""``rl-train`` then ``rl-eval`` on a simulation: the DQN, trained a few thousand steps on the
oracle's signals, beats the seeded random policy on the held-out days."""

from __future__ import annotations

import json

import pytest

from app.cli.main import main
from tests.rl_builders import oracle_signals_csv

STEPS = "3000"


def _last_json(capsys) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_rl_train_and_eval_on_the_simulator(tmp_path, capsys):
    sim = tmp_path / "sim"
    args = ["--days", "20", "--symbols", "BTCUSDT", "--news-per-day", "4", "--seed", "11"]
    assert main(["simulate", "--out", str(sim), *args]) == 0
    capsys.readouterr()
    signals = oracle_signals_csv(sim, "BTCUSDT", tmp_path / "signals.csv")
    inputs = ["--signals", str(signals), "--prices", str(sim), "--device", "cpu"]
    agent = tmp_path / "agent"

    assert main(["rl-train", *inputs, "--steps", STEPS, "--out", str(agent)]) == 0
    trained = _last_json(capsys)
    assert trained["train_end"] == "2025-01-20T00:00:00+00:00"  # 70% of 20 days, at midnight
    assert (agent / "model.zip").is_file() and (agent / "meta.json").is_file()

    assert main(["rl-eval", "--agent", str(agent), *inputs]) == 0
    report = _last_json(capsys)
    assert list(report)[:3] == ["agent", "random", "risk_layer"]
    for name in ("agent", "random", "risk_layer"):
        assert set(report[name]) == {"total_return", "sharpe", "n_trades"}
    assert report["start"] == trained["train_end"]  # held-out bars only
    assert report["risk_layer"]["n_trades"] > 0  # the oracle passes the gate sometimes
    assert report["agent"]["total_return"] > report["random"]["total_return"]

    # evaluating on bars the agent trained on is refused
    assert main(["rl-eval", "--agent", str(agent), *inputs, "--start", "2025-01-15"]) == 2
    assert "before the end of the training part" in capsys.readouterr().err
