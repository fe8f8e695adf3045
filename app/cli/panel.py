"""``python -m app panel --api URL [--port 7860] [--host 127.0.0.1]``: the control panel.

The panel talks to the signal API over HTTP only. Its key and login come from the
environment: ``APP_UI__API_KEY`` (a key of the API: operate to use the controls, read to watch),
``APP_UI__USER`` and ``APP_UI__PASSWORD`` (a login is asked whenever a password is set; on a
non-loopback --host the panel refuses to start without one). Runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.config import load_settings
from app.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "panel",
        help="the Gradio control panel over the signal API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--api", default=None, help="signal API base URL (default: ui.api_url)")
    p.add_argument("--host", default=None, help="address to listen on (default: ui.host)")
    p.add_argument("--port", type=int, default=None, help="port (default: ui.port, 7860)")
    p.add_argument("--config", default=None, help="a TOML settings file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ui.app import PanelConfigError, launch  # gradio loads only for this command

    ui = load_settings(args.config).ui
    updates = {
        k: v
        for k, v in (("api_url", args.api), ("host", args.host), ("port", args.port))
        if v is not None
    }
    if updates:
        ui = type(ui).model_validate({**ui.model_dump(), **updates})
    if not ui.api_url.startswith(("http://", "https://")):
        raise InputError(f"--api={ui.api_url!r}: expected an http:// or https:// URL")
    try:
        served = launch(ui, block=False)
    except PanelConfigError as exc:
        raise InputError(str(exc)) from None
    print(
        f"control panel: {served.url} (API {ui.api_url}; login: "
        f"{'on' if ui.password is not None else 'off'}); Ctrl-C stops it",
        flush=True,
    )
    try:
        served.demo.block_thread()
    finally:
        served.demo.close()
    return {"panel": served.url, "api": ui.api_url}
