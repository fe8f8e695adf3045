"""A secrets scan over the tracked files: keys come from the environment, never the repo."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO_ROOT

PATTERNS = {
    "aws_access_key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private_key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----"),
    "github_token": re.compile(r"gh[pousr]_[A-Za-z0-9]{36,}"),
    "slack_token": re.compile(r"xox[abpr]-[A-Za-z0-9-]{10,}"),
    "assigned_secret": re.compile(
        r"(?i)\b(api_?key|api_?secret|secret_?key|bearer_?token|password)\b\s*[:=]\s*"
        r"['\"][A-Za-z0-9/+_\-]{16,}['\"]"
    ),
}


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return [line for line in out.stdout.splitlines() if line]


def test_scanner_catches_a_planted_key() -> None:
    planted = 'api_key = "' + "A" * 8 + "b" * 8 + "1234" + '"'
    assert PATTERNS["assigned_secret"].search(planted)
    assert PATTERNS["aws_access_key"].search("AKIA" + "ABCDEFGHIJKLMNOP")


def test_no_secrets_in_tracked_files() -> None:
    hits = []
    for rel in _tracked_files():
        path = REPO_ROOT / rel
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for name, pattern in PATTERNS.items():
            if pattern.search(text):
                hits.append(f"{rel}: {name}")
    assert not hits, f"possible secrets committed: {hits}"
