"""nbval runs these notebooks against the local stack in kernels that inherit this process's
environment: give them a throwaway home and cache dir and no AWS configuration of the developer's.

``%sm_async local start`` starts the per-user *detached* stack, which outlives kernels: each
notebook gets a fresh one (the previous notebook's is stopped before its first cell) and the last
one is stopped when the session ends, so no stack outlives the test run (this conftest is loaded
for the whole suite, so that also covers stacks started by tests that do not set a cache dir).
"""

import os
import tempfile
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent

_home = tempfile.mkdtemp(prefix="sm-async-nb-notebooks-")
os.environ["SM_ASYNC_NB_HOME"] = os.path.join(_home, ".sm-async-nb")
os.environ["XDG_CACHE_HOME"] = os.path.join(_home, "cache")
os.environ["MPLBACKEND"] = "Agg"
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "SM_ASYNC_NB_REAL_ENDPOINT"):
    os.environ.pop(_name, None)

_last_notebook: list[str] = []


def _stop_detached_stack() -> None:
    from sm_async_nb.local.detached import handle as detached

    os.environ["XDG_CACHE_HOME"] = os.path.join(_home, "cache")  # a test may have changed it
    detached.stop()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.notebooks)


def pytest_runtest_setup(item):
    path = str(item.fspath)
    if _HERE in Path(path).resolve().parents and _last_notebook[-1:] != [path]:
        if _last_notebook:
            _stop_detached_stack()
        _last_notebook.append(path)


def pytest_sessionfinish(session, exitstatus):
    _stop_detached_stack()  # also any stack a test under tests/ started in this cache dir and left running
