"""nbval runs these notebooks against the local stack in kernels that inherit this process's
environment: give them a throwaway home and no AWS configuration of the developer's."""

import os
import tempfile
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent

_home = tempfile.mkdtemp(prefix="sm-async-nb-notebooks-")
os.environ["SM_ASYNC_NB_HOME"] = os.path.join(_home, ".sm-async-nb")
os.environ["MPLBACKEND"] = "Agg"
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "SM_ASYNC_NB_REAL_ENDPOINT"):
    os.environ.pop(_name, None)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.notebooks)
