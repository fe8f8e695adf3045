"""Layer rules for the simulator (DESIGN.md): ``app.sim`` imports only types, config, labels
(and errors); ``app.tuning`` reaches the simulator through ``app.sim``, never ``app.sources``.

Imports are read from the source (also those inside functions), so a lazy import cannot hide.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SIM_MAY_IMPORT = ("app.types", "app.config", "app.labels", "app.errors", "app.sim")


def app_imports(path: Path) -> set[str]:
    """Every ``app.*`` module a file imports, at any depth of the syntax tree."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "app"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "app":
                found.add(node.module)
    return found


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_sim_imports_only_types_config_labels() -> None:
    bad = {
        f"{p.relative_to(ROOT)}: {m}"
        for p in sorted((ROOT / "app" / "sim").glob("*.py"))
        for m in app_imports(p)
        if not _within(m, SIM_MAY_IMPORT)
    }
    assert not bad, sorted(bad)


def test_tuning_does_not_import_sources() -> None:
    bad = {
        f"{p.relative_to(ROOT)}: {m}"
        for p in sorted((ROOT / "app" / "tuning").glob("*.py"))
        for m in app_imports(p)
        if _within(m, ("app.sources",))
    }
    assert not bad, sorted(bad)


def test_the_scanner_sees_a_tucked_away_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from app.sources.ccxt_source import CcxtSource\n")
    assert app_imports(module) == {"app.sources.ccxt_source"}
    assert not _within("app.sources.ccxt_source", SIM_MAY_IMPORT)
