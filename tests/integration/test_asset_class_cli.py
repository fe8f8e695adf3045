"""The store remembers each symbol's asset class (issue 9, item 10), tried as a user would:
``ingest --symbol XRPUSDT --asset-class crypto`` then ``features --store URL --symbol XRPUSDT``
without naming the class again. A class given later must agree with the store's; a conflict is
exit 2 with one line naming both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli.main import main
from app.store import open_store
from app.types import AssetClass
from tests.builders import bars_frame


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 else {}), captured.err


@pytest.fixture()
def xrp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> str:
    """A store holding XRPUSDT (outside the configured universe), ingested as crypto."""
    monkeypatch.setenv("APP_REGISTRY_DIR", str(tmp_path / "registry"))
    csv = tmp_path / "XRPUSDT_5m.csv"
    bars_frame(n=400, symbol="XRPUSDT", seed=2).drop(columns="symbol").to_csv(csv, index=False)
    url = f"duckdb:///{tmp_path}/store.db"
    code, summary, err = _run(
        capsys, "ingest", "--path", str(csv), "--symbol", "XRPUSDT", "--asset-class", "crypto",
        "--store", url,
    )  # fmt: skip
    assert code == 0, err
    assert summary["asset_classes"] == {"XRPUSDT": "crypto"}
    assert summary["rows_written"] == 400
    return url


def test_features_take_the_asset_class_from_the_store(xrp, tmp_path, capsys) -> None:
    out = tmp_path / "xrp.parquet"
    code, summary, err = _run(
        capsys, "features", "--store", xrp, "--symbol", "XRPUSDT", "--out", str(out)
    )
    assert code == 0, err
    assert summary["asset_class"] == "crypto" and summary["rows"] == 400 and out.is_file()
    # the same class given again is fine; another one is an error naming both
    code, _, _ = _run(
        capsys, "features", "--store", xrp, "--symbol", "XRPUSDT", "--asset-class", "crypto",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0
    code, _, err = _run(
        capsys, "features", "--store", xrp, "--symbol", "XRPUSDT", "--asset-class", "stocks",
        "--out", str(out),
    )  # fmt: skip
    assert code == 2
    assert "--asset-class=stocks" in err and "'XRPUSDT' as crypto" in err
    assert len(err.strip().splitlines()) == 1


def test_a_symbol_the_store_does_not_know_still_needs_a_class(xrp, tmp_path, capsys) -> None:
    with open_store(xrp) as store:  # bars written without a recorded class
        store.write_bars(bars_frame(n=50, symbol="DOGEUSDT"))
    out = str(tmp_path / "doge.parquet")
    code, _, err = _run(capsys, "features", "--store", xrp, "--symbol", "DOGEUSDT", "--out", out)
    assert code == 2 and "DOGEUSDT" in err and "pass --asset-class" in err
    code, summary, _ = _run(
        capsys, "features", "--store", xrp, "--symbol", "DOGEUSDT", "--asset-class", "stocks",
        "--out", out,
    )  # fmt: skip
    assert code == 0 and summary["asset_class"] == "stocks"


def test_reingesting_under_another_class_is_refused_and_writes_nothing(
    xrp, tmp_path, capsys
) -> None:
    csv = tmp_path / "more" / "XRPUSDT_5m.csv"
    csv.parent.mkdir()
    more = bars_frame(n=10, symbol="XRPUSDT", seed=2, start=bars_frame(n=401)["ts"].iloc[-1])
    more.drop(columns="symbol").to_csv(csv, index=False)
    code, _, err = _run(
        capsys, "ingest", "--path", str(csv), "--asset-class", "stocks", "--store", xrp
    )
    assert code == 2 and "XRPUSDT is crypto in the store, not stocks" in err
    with open_store(xrp) as store:
        assert len(store.read_bars("XRPUSDT")) == 400
        assert store.asset_classes() == {"XRPUSDT": AssetClass.CRYPTO}


def test_backtest_and_walkforward_read_the_class_from_the_store(xrp, tmp_path, capsys) -> None:
    out = str(tmp_path / "bt")
    code, metrics, err = _run(
        capsys, "backtest", "--store", xrp, "--tickers", "XRPUSDT", "--rule", "ema_cross",
        "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert metrics["signals"]["read"] > 0
    code, _, err = _run(
        capsys, "backtest", "--store", xrp, "--tickers", "XRPUSDT", "--rule", "ema_cross",
        "--asset-class", "XRPUSDT=forex", "--out", out,
    )  # fmt: skip
    assert code == 2 and "--asset-class=forex" in err and "'XRPUSDT' as crypto" in err
    code, _, err = _run(
        capsys, "walkforward", "--store", xrp, "--symbols", "XRPUSDT", "--asset-class", "stocks",
        "--out", str(tmp_path / "wf"),
    )  # fmt: skip
    assert code == 2 and "--asset-class=stocks" in err and "'XRPUSDT' as crypto" in err
