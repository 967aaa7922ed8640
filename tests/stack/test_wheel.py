"""The wheel a user installs (SPEC §19): built from this tree (or the one CI built, given as
SM_ASYNC_NB_WHEEL), it carries the very notebooks and models the test suite runs, byte for byte, its
version is pyproject.toml's, and its own code writes the examples and says its version. CI also
installs it into a fresh venv and runs the quickstart and a notebook from `examples DIR` (.ci/run)."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
LEFT_OUT = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".benchmarks",
                                  "test-artifacts", "*.sqlite3*")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    given = os.environ.get("SM_ASYNC_NB_WHEEL")
    if given:
        return Path(given)
    # A clean copy: setuptools builds in the source tree and would reuse a stale build/ folder.
    source = tmp_path_factory.mktemp("source") / "sm_async_nb"
    shutil.copytree(REPO, source, ignore=LEFT_OUT, symlinks=True)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
                   check=True, timeout=280)
    [built] = out.glob("*.whl")
    return built


def repository_examples() -> dict[str, bytes]:
    files = [*NOTEBOOKS.glob("*.ipynb"), *NOTEBOOKS.glob("models/*.py")]
    return {p.relative_to(NOTEBOOKS).as_posix(): p.read_bytes() for p in files}


def test_the_wheel_carries_the_notebooks_and_models_the_tests_run_byte_for_byte(wheel):
    prefix = "sm_async_nb/example_notebooks/"
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name[len(prefix):]: archive.read(name) for name in archive.namelist() if name.startswith(prefix)}
        names = archive.namelist()
    assert shipped == repository_examples()
    assert "sm_async_nb/local/demo_models/iris.py" in names and "sm_async_nb/py.typed" in names
    assert not [n for n in names if n.endswith(("conftest.py", ".cfg")) or n.startswith(("tests/", "notebooks/"))]


def test_the_wheels_metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(name))
    assert metadata["Version"] == PROJECT["version"] and wheel.name.startswith(f"sm_async_nb-{PROJECT['version']}-")
    assert "Framework :: Jupyter" in metadata.get_all("Classifier")
    assert metadata.get_all("Project-URL") is None  # none that leads nowhere
    requires = metadata.get_all("Requires-Dist")
    assert any(r.startswith("moto[server]") and ">=5.1.22" in r and "<6" in r for r in requires)
    assert not any("==" in r.split(";")[0] for r in requires)  # ranges only: it installs next to a user's packages


def test_the_wheels_own_code_writes_the_examples_and_says_its_version(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # a pure-Python wheel installs as exactly these files
    env = {**os.environ, "PYTHONPATH": str(site)}
    cwd = tmp_path / "empty"
    cwd.mkdir()

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sm_async_nb.cli", *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=60)

    located = subprocess.run([sys.executable, "-c", "import sm_async_nb; print(sm_async_nb.__file__, "
                              "sm_async_nb.__version__)"], cwd=cwd, env=env, capture_output=True, text=True)
    assert located.stdout.split() == [str(site / "sm_async_nb" / "__init__.py"), PROJECT["version"]]
    assert cli("--version").stdout == f"sm-async-nb {PROJECT['version']}\n"
    done = cli("examples", "out")
    assert done.returncode == 0, done.stderr
    written = cwd / "out"
    assert {p.relative_to(written).as_posix(): p.read_bytes() for p in written.rglob("*") if p.is_file()} \
        == repository_examples()
    again = cli("examples", "out")
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "is not empty" in again.stderr
