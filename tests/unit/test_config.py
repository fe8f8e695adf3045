"""Settings: offline defaults, TOML and APP_* overrides, unknown keys refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import load_settings
from app.types import AssetClass


def test_defaults_run_offline() -> None:
    s = load_settings()
    assert s.store_url.startswith("duckdb://")
    assert s.risk.confidence_gate == 0.70
    assert s.risk.max_daily_drawdown == 0.02
    assert not s.live_trading
    assert s.asset("BTCUSDT").asset_class is AssetClass.CRYPTO


def test_toml_file_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "app.toml"
    cfg.write_text(
        'store_url = "duckdb:///tmp/x.db"\n'
        "[risk]\nconfidence_gate = 0.8\n"
        '[[universe]]\nsymbol = "SPY"\nasset_class = "stocks"\nsource = "csv"\n'
    )
    s = load_settings(cfg)
    assert s.store_url == "duckdb:///tmp/x.db"
    assert s.risk.confidence_gate == 0.8
    assert [a.symbol for a in s.universe] == ["SPY"]
    monkeypatch.setenv("APP_RISK__CONFIDENCE_GATE", "0.9")
    assert load_settings(cfg).risk.confidence_gate == 0.9


def test_unknown_keys_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[risk]\nconfidence_gat = 0.8\n")
    with pytest.raises(ValidationError, match="confidence_gat"):
        load_settings(cfg)
    with pytest.raises(ValidationError, match="bogus"):
        load_settings(bogus=1)


def test_bad_values_name_the_field() -> None:
    with pytest.raises(ValidationError, match="store_url"):
        load_settings(store_url="mysql://x")
    with pytest.raises(ValidationError, match="confidence_gate"):
        load_settings(risk={"confidence_gate": 1.5})


def test_missing_config_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_settings(tmp_path / "nope.toml")


def test_flow_defaults_name_finra_as_the_source_does() -> None:
    from app.config import Settings
    from app.sources.flow_sources import FINRA_BASE_URL

    assert Settings().flow.finra_base_url == FINRA_BASE_URL and Settings().flow.ats_file == ""
