"""Committed notebooks carry no outputs and name their kernel (no kernel dialog in JupyterLab)."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_the_documented_notebooks_exist():
    assert {p.stem for p in NOTEBOOKS} >= {"quickstart", "dataframe-batch", "failures-ttl-timeouts",
                                           "settings-and-real-aws", "sns-events"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_stale_outputs_and_a_kernelspec(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: stale output"
