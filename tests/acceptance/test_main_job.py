"""The main job end to end, as `make run` runs it (smaller: 10 simulated days, 2 folds, a
5 s paper replay, and the sentiment head trained on every 8th Financial PhraseBank sentence)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT, SHARED_DATA

FPB = Path("sentiment_financial_phrasebank") / "fpb_sentences.csv"


def fpb_sample(root: Path, every: int = 8) -> Path:
    """A --shared-dir holding every ``every``-th real FPB sentence (~480 of 3,869), when the
    shared data has FPB: encoding the whole train split was half of this test's time (~50 s
    on 2 cores); the head is still fitted on real labelled sentences by the same step.
    tests/integration/test_sentiment_fpb.py holds the head's accuracy on the full held-out
    part."""
    src = SHARED_DATA / FPB
    if src.is_file():
        rows = pd.read_csv(src)
        (root / FPB).parent.mkdir(parents=True)
        rows.iloc[::every].to_csv(root / FPB, index=False)
    return root


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    work = tmp_path_factory.mktemp("main_job")
    shared = fpb_sample(tmp_path_factory.mktemp("shared"))
    env = {**os.environ, "APP_REGISTRY_DIR": str(work / "registry")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "run",
            "--workdir",
            str(work),
            "--days",
            "10",
            "--folds",
            "2",
            "--shared-dir",
            str(shared),
            "--live-seconds",
            "5",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return work, json.loads(lines[-1]), proc.stdout


def test_every_step_leaves_its_output(main_job: tuple[Path, dict, str]) -> None:
    work, summary, stdout = main_job
    for rel in (
        "store.db",
        "sim/manifest.json",
        "features_BTCUSDT.parquet",
        "walkforward/report.md",
        "walkforward/signals.csv",
        "backtest/metrics.json",
        "backtest/equity.csv",
    ):
        assert (work / rel).is_file(), rel
    assert "Main job finished" in stdout
    assert summary["bars_written"] == 2 * 10 * 288
    assert summary["feature_columns"] >= 20
    assert summary["model_version"]
    if (SHARED_DATA / FPB).is_file():  # the head is trained on real labelled sentences, once
        assert summary["sentiment_head"] != "zero-shot"
        assert (work / "registry" / "sentiment" / "PROMOTED").is_file()


def test_model_is_scored_beside_baselines_and_below_the_oracle(
    main_job: tuple[Path, dict, str],
) -> None:
    _, summary, _ = main_job
    assert set(summary["baselines"]) == {"majority", "prev_sign", "logreg", "lightgbm"}
    dacc, oracle = summary["dacc"], summary["oracle_dacc"]
    assert 0.45 < dacc < 0.7
    assert 0.55 < oracle < 0.68
    n = summary["signals"]
    se = (dacc * (1 - dacc) / n) ** 0.5
    assert dacc <= oracle + 3 * se, "a model above the oracle is leaking"


def test_signals_are_out_of_sample_and_all_reach_the_risk_engine(
    main_job: tuple[Path, dict, str],
) -> None:
    work, summary, _ = main_job
    report = json.loads((work / "walkforward" / "report.json").read_text())
    signals = pd.read_csv(work / "walkforward" / "signals.csv")
    ts = pd.to_datetime(signals["ts"], utc=True)
    fold_of = pd.Series(-1, index=signals.index)
    for k, fold in enumerate(report["folds"]):
        test_lo, test_hi = (pd.Timestamp(t) for t in fold["times"]["test"])
        inside = (ts >= test_lo) & (ts <= test_hi)
        assert (fold_of[inside] == -1).all(), "a signal in two folds' test blocks"
        fold_of[inside] = k
        # every signal of this fold comes after everything its model trained or tuned on
        assert ts[inside].min() > pd.Timestamp(fold["times"]["val"][1])
        assert ts[inside].min() > pd.Timestamp(fold["times"]["train"][1])
    assert (fold_of >= 0).all(), "a signal outside every test block"
    metrics = json.loads((work / "backtest" / "metrics.json").read_text())
    assert metrics["signals"]["read"] == len(signals) == summary["signals"]
    assert metrics["signals"]["rejected"] == 0
    below_gate = int(((signals["confidence"] < 0.70) & (signals["signal"] != "HOLD")).sum())
    assert metrics["hold_reasons"].get("confidence_below_gate", 0) == below_gate


def test_the_run_ends_paper_trading_the_held_back_data(main_job: tuple[Path, dict, str]) -> None:
    work, summary, stdout = main_job
    live = summary["live"]
    assert live["errors"] == [] and live["bars"] > 0 and live["signals"] == live["bars"]
    assert "signal API: http://127.0.0.1:" in stdout and "Paper trading replay" in stdout
    assert (work / "live" / "signals.csv").is_file() and (work / "live" / "fills.csv").is_file()
    # the replay trades only bars the model never saw: from its last fold's test window on
    report = json.loads((work / "walkforward" / "report.json").read_text())
    test_start = pd.Timestamp(report["folds"][-1]["times"]["test"][0])
    live_signals = pd.read_csv(work / "live" / "signals.csv", parse_dates=["ts"])
    assert live_signals["ts"].min() >= test_start
