"""The panel child's command line and environment: the key only in the environment."""

from __future__ import annotations

from pathlib import Path

from app.cli.main import build_parser
from app.live.panel_process import PanelProcess

KEY = "a-one-time-key-0123456789"


def test_the_key_travels_in_the_environment_not_the_argv() -> None:
    p = PanelProcess("http://127.0.0.1:8123", KEY, port=0, config=Path("s.toml"))
    argv = p.argv()
    assert KEY not in " ".join(argv) and KEY not in repr(p.__dict__.get("api_url"))
    assert argv[1:6] == ["-m", "app", "panel", "--api", "http://127.0.0.1:8123"]
    args = build_parser().parse_args(argv[3:])  # the CLI's own parser accepts it
    assert args.port > 0 and args.config == "s.toml"
    env = p.env({"PATH": "/bin"})
    assert env["APP_UI__API_KEY"] == KEY and env["PYTHONUNBUFFERED"] == "1"


def test_a_configured_panel_key_wins_and_no_port_means_ui_port() -> None:
    p = PanelProcess("http://127.0.0.1:8123", KEY)
    assert p.env({"APP_UI__API_KEY": "set-by-operator"})["APP_UI__API_KEY"] == "set-by-operator"
    assert "--port" not in p.argv()
    assert "APP_UI__API_KEY" not in PanelProcess("http://x", None).env({})
