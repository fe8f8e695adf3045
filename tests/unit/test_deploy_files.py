"""The always-on machine's files (Dockerfile, docker-compose.yml, deploy/seed-trader.service)
run only commands the CLI has, with flags it accepts. No Docker daemon or systemd runs here:
the files are parsed (pyyaml, a small Dockerfile/unit reader) and every ``python -m app ...``
argv is parsed by ``app.cli.main.build_parser()`` itself."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex

import pytest
import yaml

from app.cli.main import build_parser
from tests.conftest import REPO_ROOT

# Commands the files run that are not registered on main yet (the live worker's branch adds
# `live`). Checked automatically as soon as the CLI registers them; any other missing command
# fails.
NOT_YET_ON_MAIN = frozenset({"live"})


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO_ROOT / "Dockerfile").read_text()
    logical, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            logical.append(buf.strip())
            buf = ""
    return [(ins.split(None, 1)[0].upper(), ins.split(None, 1)[1]) for ins in logical]


def _argv_of(instruction_args: str) -> list[list[str]]:
    """The command lines of a RUN/CMD (exec JSON form or shell form, split on && ; |)."""
    if instruction_args.lstrip().startswith("["):
        return [json.loads(instruction_args)]
    return [shlex.split(part) for part in re.split(r"&&|;|\|\|?", instruction_args)]


def _compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def _unit() -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in (REPO_ROOT / "deploy" / "seed-trader.service").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"unit line outside a section: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


def _app_argvs() -> list[tuple[str, list[str]]]:
    """Every (where, argv after `python -m app`) the three files run."""
    found: list[tuple[str, list[str]]] = []
    candidates: list[tuple[str, list[str]]] = []
    for ins, args in _dockerfile_instructions():
        if ins in ("RUN", "CMD", "ENTRYPOINT"):
            candidates += [(f"Dockerfile {ins}", argv) for argv in _argv_of(args)]
    for name, service in _compose()["services"].items():
        command = service["command"]
        argv = command if isinstance(command, list) else shlex.split(command)
        candidates.append((f"docker-compose.yml {name}", [str(a) for a in argv]))
    for exec_start in _unit()["Service"]["ExecStart"]:
        candidates.append(("seed-trader.service ExecStart", shlex.split(exec_start)))
    for where, argv in candidates:
        for i in range(len(argv) - 2):
            if re.search(r"python(3(\.\d+)?)?$", argv[i]) and argv[i + 1 : i + 3] == ["-m", "app"]:
                found.append((where, argv[i + 3 :]))
    return found


def test_the_files_run_the_live_worker_and_the_panel() -> None:
    commands = {(where.split()[0], argv[0] if argv else "") for where, argv in _app_argvs()}
    assert ("docker-compose.yml", "live") in commands
    assert ("docker-compose.yml", "panel") in commands
    assert ("seed-trader.service", "live") in commands


def test_compose_runs_one_panel_and_the_unit_the_workers() -> None:
    argvs = {where.split()[0]: argv for where, argv in _app_argvs() if argv and argv[0] == "live"}
    assert "--no-panel" in argvs["docker-compose.yml"]  # compose runs the panel as a service
    assert "--no-panel" not in argvs["seed-trader.service"]  # the worker starts it there


def _parse(argv: list[str]) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise AssertionError(f"{argv}: {err.getvalue().strip()}") from None


@pytest.mark.parametrize(("where", "argv"), _app_argvs(), ids=lambda v: str(v))
def test_every_app_command_exists_with_those_flags(where: str, argv: list[str]) -> None:
    registered = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is not None and command not in registered and command in NOT_YET_ON_MAIN:
        pytest.skip(f"{where}: `{command}` is not registered in this checkout's CLI yet")
    assert command is None or command in registered, f"{where}: no command {command!r}"
    _parse(argv)


def test_a_wrong_flag_is_caught() -> None:
    with pytest.raises(AssertionError, match="unrecognized arguments"):
        _parse(["panel", "--api", "http://x:8000", "--no-such-flag"])


def test_compose_restarts_keeps_state_on_named_volumes_and_checks_health() -> None:
    compose = _compose()
    named = set(compose["volumes"])
    assert {"store", "registry"} <= named
    for name in ("live", "panel"):
        service = compose["services"][name]
        assert service["restart"] == "unless-stopped", name
        assert service["env_file"], f"{name}: keys come from an env file"
        mounts = {v.split(":")[0]: v.split(":")[1] for v in service["volumes"]}
        assert mounts.get("store") == "/data/store" and mounts.get("registry") == "/data/registry"
        assert "/healthz" in " ".join(service["healthcheck"]["test"]), name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is not loopback-only"
        assert "environment" not in service or not any(
            re.search(r"(?i)key|secret|password|token", k) for k in service["environment"]
        ), f"{name}: a secret in the compose file"


def test_dockerfile_has_a_cpu_base_and_a_cuda_variant_and_installs_as_the_readme() -> None:
    instructions = _dockerfile_instructions()
    args = [a for ins, a in instructions if ins == "ARG"]
    assert "BASE_IMAGE=python:3.11-slim" in args
    assert [a for ins, a in instructions if ins == "FROM"] == ["${BASE_IMAGE}"]
    runs = [a for ins, a in instructions if ins == "RUN"]
    torch_at = next(i for i, r in enumerate(runs) if '"torch==' in r)
    pin = re.search(r"torch==([0-9.]+)", (REPO_ROOT / "Makefile").read_text()).group(1)
    assert f'"torch=={pin}"' in runs[torch_at]
    assert any(
        i > torch_at and r.strip().endswith("pip install -q -e .") for i, r in enumerate(runs)
    )
    assert "cuda" in (REPO_ROOT / "Dockerfile").read_text().split("ARG BASE_IMAGE")[0].lower()


def test_unit_restarts_and_reads_keys_from_an_env_file() -> None:
    unit = _unit()
    assert unit["Service"]["Restart"] == ["always"]
    assert unit["Service"]["EnvironmentFile"] == ["/etc/seed-trader.env"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_env_example_names_the_keys_and_holds_no_value() -> None:
    lines = (REPO_ROOT / "seed-trader.env.example").read_text().splitlines()
    pairs = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert {"APP_API__KEYS", "APP_UI__API_KEY", "APP_UI__PASSWORD"} <= set(pairs)
    assert {k: v for k, v in pairs.items() if v and k != "APP_UI__USER"} == {}
    assert "seed-trader.env" in (REPO_ROOT / ".gitignore").read_text().splitlines()
