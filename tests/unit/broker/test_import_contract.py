"""Only the ExecutionEngine reaches a broker adapter: no module of app/ other than
app/broker/factory.py imports an adapter, and only app/broker/execution.py imports the factory
(ast-based: static and lazy imports inside functions both count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.broker.factory import MissingCredentials, require_live_allowed

APP = Path(__file__).resolve().parents[3] / "app"
ADAPTERS = {"app.broker.paper", "app.broker.ccxt_broker", "app.broker.ib_broker"}


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            out.update(a.value for a in node.args if isinstance(a, ast.Constant))
    return out


def _module(path: Path) -> str:
    return ".".join(path.relative_to(APP.parent).with_suffix("").parts)


def test_only_the_factory_imports_adapters_and_only_execution_imports_the_factory() -> None:
    offenders = []
    for path in APP.rglob("*.py"):
        mod, names = _module(path), _imports(path)
        if mod in ADAPTERS:
            continue
        if names & ADAPTERS and mod != "app.broker.factory":
            offenders.append((mod, sorted(names & ADAPTERS)))
        if "app.broker.factory" in names and mod != "app.broker.execution":
            offenders.append((mod, ["app.broker.factory"]))
    assert offenders == []


def test_the_contract_test_sees_a_lazy_import() -> None:
    tree = "def f():\n    from app.broker.paper import PaperBroker\n"
    p = APP.parent / "tests" / "unit" / "broker" / "_probe_tmp.py"
    p.write_text(tree)
    try:
        assert "app.broker.paper" in _imports(p)
    finally:
        p.unlink()


def test_require_live_allowed() -> None:
    require_live_allowed("paper", False, {})
    with pytest.raises(MissingCredentials, match="--live"):
        require_live_allowed("binance", False, {"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"})
    with pytest.raises(MissingCredentials, match="BINANCE_API_SECRET"):
        require_live_allowed("binance", True, {"BINANCE_API_KEY": "k"})
    require_live_allowed("binance", True, {"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"})
    with pytest.raises(MissingCredentials, match="--live"):
        require_live_allowed("ib", False, {})
