"""The structure the code promises: one wiring point, no import cycles (imports inside functions
counted), notices through logging, a logger only in a module that logs. import-linter checks the layers in .ci/run; these tests check
what it cannot, and that grimp sees what we rely on it seeing."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sm_async_nb"
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "demo_models" not in p.parts)
WIRED = {"Context", "Tracker", "Preparer", "Submitter", "HandleParts", "InputPrefix", "AwsClients", "Journal"}


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("sm_async_nb")


def test_imports_inside_functions_are_in_the_graph(graph):
    # StackHandle.client() imports the client inside the function: the graph must see it, or the
    # cycle and layer checks below (and import-linter's) would miss such imports.
    assert graph.direct_import_exists(importer="sm_async_nb.local.handle", imported="sm_async_nb.client")
    assert graph.direct_import_exists(importer="sm_async_nb.client", imported="sm_async_nb.notebook.panel.panel")


def test_no_module_level_import_cycle(graph):
    modules = {m for m in graph.modules if m.startswith("sm_async_nb")}
    cycles = []
    for importer in sorted(modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported in modules and imported != importer and \
                    graph.find_shortest_chain(importer=imported, imported=importer):
                cycles.append((importer, imported))
    assert cycles == []


def test_the_only_import_up_into_the_notebook_layer_is_client_panel(graph):
    above = ("sm_async_nb.notebook", "sm_async_nb.local", "sm_async_nb.cli", "sm_async_nb.quickstart")
    core = {m for m in graph.modules if m.startswith("sm_async_nb.")
            and not any(m == top or m.startswith(top + ".") for top in above)}
    assert "sm_async_nb.client" in core
    upward = sorted((importer, imported) for importer in core
                    for imported in graph.find_modules_directly_imported_by(importer)
                    if imported.startswith("sm_async_nb.notebook"))
    assert upward == [("sm_async_nb.client", "sm_async_nb.notebook.panel.panel")]


def _constructed(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.func.id for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in WIRED}


def test_client_is_the_one_wiring_point():
    wiring = {str(p.relative_to(PACKAGE)): found for p in SOURCES if (found := _constructed(p))}
    assert wiring.pop("client.py") >= {"Context", "Tracker", "Preparer", "Submitter", "HandleParts"}
    # The journal opens itself in its own module only through the client; nothing else builds parts.
    assert wiring == {}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_notices_go_through_logging(path):
    # Never warnings.warn into whichever cell happens to be running: log, and let the panel show it.
    assert "warnings.warn" not in path.read_text()


def _is_get_logger(node: ast.expr) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "getLogger"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "logging")


def test_a_module_has_a_logger_only_if_it_logs():
    unused = []
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        loggers = {target.id for node in tree.body if isinstance(node, ast.Assign) and _is_get_logger(node.value)
                   for target in node.targets if isinstance(target, ast.Name)}
        read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        unused += [f"{path.relative_to(PACKAGE)}: {name}" for name in sorted(loggers - read)]
    assert unused == []
