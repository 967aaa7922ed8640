"""docs/ARCHITECTURE.md's layer table restates the layers contract of pyproject.toml (what .ci/run's
import-linter enforces) exactly: the same layers, in the same order, with the same modules, and
siblings independent (``|``) or not (``:``) as the table says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[2]
ROOT = "sm_async_nb."
SIBLINGS = {"independent of each other": "|", "may import each other": ":"}


def contract() -> dict:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    [layers] = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return layers


def in_pyproject() -> list[tuple[tuple[str, ...], str | None]]:
    """Each layer as (its modules without the package prefix, the siblings' separator or None)."""
    layers = []
    for layer in contract()["layers"]:
        [separator] = {c for c in "|:" if c in layer} or {None}
        modules = tuple(m.strip().removeprefix(ROOT) for m in re.split(r"[|:]", layer))
        layers.append((modules, separator))
    return layers


def in_the_doc() -> list[tuple[tuple[str, ...], str | None]]:
    """Each row of the layer table as (its backticked modules as dotted names, the separator its words name)."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    table = re.search(r"\| layer \| modules \|\n\|---\|---\|\n((?:\|.*\|\n)+)", text)
    assert table, "docs/ARCHITECTURE.md has no '| layer | modules |' table"
    layers = []
    for row in table.group(1).splitlines():
        cell = row.strip("|").split("|")[1]
        modules = tuple(name.rstrip("/").replace("/", ".") for name in re.findall(r"`([\w/.]+)`", cell))
        words = [sep for phrase, sep in SIBLINGS.items() if phrase in cell]
        layers.append((modules, words[0] if words else None))
    return layers


def test_the_layer_table_is_the_layers_contract():
    assert in_the_doc() == in_pyproject()


def test_the_doc_names_each_import_the_contract_lets_through():
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    for ignored in contract().get("ignore_imports", []):
        importer, imported = (m.strip().removeprefix(ROOT) for m in ignored.split("->"))
        assert f"`{imported}`" in text and importer in text, f"docs/ARCHITECTURE.md does not explain {ignored}"
