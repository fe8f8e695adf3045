"""The walkforward and models commands through app.cli.main, as a user runs them."""

from __future__ import annotations

import json

import pytest
import torch

from app.cli.main import main
from tests.builders import bars_frame

torch.set_num_threads(1)


def write_csv(path, n, seed=0):
    frame = bars_frame(n, seed=seed)
    frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame[["ts", "open", "high", "low", "close", "volume"]].to_csv(path, index=False)
    return path


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_walkforward_quick_run_writes_reports_and_registers_a_model(tmp_path, capsys):
    csv = write_csv(tmp_path / "RW_5m.csv", 2600)
    out, registry = tmp_path / "wf", tmp_path / "registry"
    code = main(
        [
            "walkforward",
            "--data",
            str(csv),
            "--asset-class",
            "crypto",
            "--quick",
            "--folds",
            "2",
            "--max-epochs",
            "1",
            "--max-windows",
            "600",
            "--baselines",
            "majority",
            "prev_sign",
            "logreg",
            "--device",
            "cpu",
            "--register",
            "--registry",
            str(registry),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    summary = last_json(capsys)
    assert set(summary) >= {"dacc", "baselines", "oracle_dacc", "sharpe", "folds"}
    assert summary["folds"] == 2 and summary["oracle_dacc"] is None
    assert summary["backtest"]["n_trades"] >= 0  # the event-driven backtest ran
    assert summary["baselines"]["lightgbm"] is None  # not requested
    assert 0.0 <= summary["dacc"] <= 1.0
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["symbols"] == ["RW"] and len(report["folds"]) == 2
    assert "## Per fold" in (out / "report.md").read_text()
    dis = json.loads((out / "disagreement.json").read_text())  # the model vs the best baseline
    assert dis["b"] == report["significance"]["best_baseline"]
    assert dis["overall"]["model"]["dacc"] == pytest.approx(summary["dacc"], abs=1e-4)
    assert dis["overall"][dis["b"]]["dacc"] == pytest.approx(
        summary["baselines"][dis["b"]], abs=1e-4
    )

    assert main(["models", "--registry", str(registry), "list"]) == 0
    listed = last_json(capsys)
    assert listed["versions"] == [summary["version"]] and listed["promoted"] is None
    assert main(["models", "--registry", str(registry), "promote", summary["version"]]) == 0
    assert last_json(capsys)["promoted"] == summary["version"]
    assert main(["models", "--registry", str(registry), "show", summary["version"]]) == 0
    shown = last_json(capsys)
    assert shown["symbols"] == ["RW"] and shown["lookback"] == 32


def test_too_few_bars_for_the_folds_is_exit_2_naming_the_numbers(tmp_path, capsys):
    csv = write_csv(tmp_path / "RW_5m.csv", 900)
    code = main(
        [
            "walkforward",
            "--data",
            str(csv),
            "--asset-class",
            "crypto",
            "--quick",
            "--folds",
            "8",
            "--out",
            str(tmp_path / "wf"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "usable bars (full window + label) for 8 folds" in err and "need >=" in err


def test_unknown_version_and_missing_asset_class_are_exit_2(tmp_path, capsys):
    assert main(["models", "--registry", str(tmp_path), "promote", "nope"]) == 2
    assert "version='nope' not found" in capsys.readouterr().err
    csv = write_csv(tmp_path / "RW_5m.csv", 100)
    assert main(["walkforward", "--data", str(csv), "--out", str(tmp_path / "o")]) == 2
    assert "--asset-class is required" in capsys.readouterr().err


def test_models_list_on_an_empty_registry(tmp_path, capsys):
    assert main(["models", "--registry", str(tmp_path / "none"), "list"]) == 0
    assert last_json(capsys)["versions"] == []
