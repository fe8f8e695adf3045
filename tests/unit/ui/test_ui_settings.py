"""UiSettings from the environment, the exposure rule, and the `panel` command's refusals."""

from __future__ import annotations

import pytest

from app.cli.main import main
from app.config import load_settings
from ui.app import PanelConfigError, check_exposure


def test_ui_settings_from_the_environment_keep_secrets_secret(monkeypatch) -> None:
    monkeypatch.setenv("APP_UI__API_KEY", "k" * 20)
    monkeypatch.setenv("APP_UI__USER", "alice")
    monkeypatch.setenv("APP_UI__PASSWORD", "p" * 12)
    ui = load_settings().ui
    assert ui.user == "alice" and ui.api_key.get_secret_value() == "k" * 20
    assert "k" * 20 not in repr(ui) and "p" * 12 not in repr(ui)
    assert ui.password.get_secret_value() == "p" * 12


def test_defaults_are_loopback_without_login(monkeypatch) -> None:
    for name in ("APP_UI__API_KEY", "APP_UI__PASSWORD", "APP_UI__HOST"):
        monkeypatch.delenv(name, raising=False)
    ui = load_settings().ui
    assert (ui.host, ui.port, ui.password, ui.api_url) == (
        "127.0.0.1",
        7860,
        None,
        "http://127.0.0.1:8000",
    )


def test_a_non_loopback_address_needs_a_password() -> None:
    check_exposure("127.0.0.1", None)
    check_exposure("localhost", None)
    check_exposure("0.0.0.0", "secret")  # noqa: S104
    with pytest.raises(PanelConfigError, match="host='0.0.0.0'.*APP_UI__PASSWORD"):
        check_exposure("0.0.0.0", None)  # noqa: S104


def test_panel_command_refuses_to_expose_controls_without_login(monkeypatch, capsys) -> None:
    monkeypatch.delenv("APP_UI__PASSWORD", raising=False)
    assert main(["panel", "--host", "0.0.0.0", "--port", "7999"]) == 2  # noqa: S104
    err = capsys.readouterr().err
    assert err.startswith("error: panel host='0.0.0.0'") and len(err.splitlines()) == 1


def test_panel_command_checks_the_api_url(capsys) -> None:
    assert main(["panel", "--api", "127.0.0.1:8000"]) == 2
    assert "--api='127.0.0.1:8000'" in capsys.readouterr().err
