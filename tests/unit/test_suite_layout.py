"""How the test suite itself is built: a test's tier marker comes from its folder only, no test module
imports another, and the shared machinery exists once, in tests/conftest.py: free ports, the moto
server, the kernel harness."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
CONFTEST = TESTS / "conftest.py"
TIERS = {"unit", "stack", "kernel", "browser", "reliability"}
SOURCES = sorted(TESTS.rglob("*.py"))
# What only tests/conftest.py may define or start: another definition, or a start anywhere else, is a copy.
DEFINED_ONCE = {"free_port", "_free_port", "Kernel"}
STARTED_ONCE = {"ThreadedMotoServer", "KernelManager", "NotebookClient", "moto.server"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(TESTS)}:{getattr(node, 'lineno', 0)}"


def test_no_test_module_imports_another():
    found = []
    for path in SOURCES:
        for node in ast.walk(_tree(path)):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found += [f"{_where(path, node)} imports {name}" for name in names
                      if name.split(".")[-1].startswith(("test_", "conftest"))]
    assert found == []


def _marks(value: ast.expr) -> list[str]:
    items = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
    return [ast.unparse(item).split("(")[0].rsplit(".", 1)[-1] for item in items]


def test_tier_markers_come_from_the_folder_only():
    hand_set = []
    for path in SOURCES:
        for node in _tree(path).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
                hand_set += [f"{_where(path, node)} sets {mark}" for mark in _marks(node.value) if mark in TIERS]
    assert hand_set == []


def test_free_ports_moto_servers_and_kernels_are_made_in_one_place():
    copies = []
    for path in SOURCES:
        if path == CONFTEST:
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in DEFINED_ONCE:
                copies.append(f"{_where(path, node)} defines {node.name}")
            elif isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                args = {c.value for a in node.args for c in ast.walk(a) if isinstance(c, ast.Constant)}
                copies += [f"{_where(path, node)} starts {name}" for name in STARTED_ONCE & ({called} | args)]
    assert copies == []
