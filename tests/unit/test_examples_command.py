"""`sm-async-nb examples DIR` and `--version`, from the source tree (the wheel's copies: tests/stack/test_wheel.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import sm_async_nb
from sm_async_nb.cli import main

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"


def repository_examples() -> dict[str, bytes]:
    files = [*NOTEBOOKS.glob("*.ipynb"), *NOTEBOOKS.glob("models/*.py")]
    return {p.relative_to(NOTEBOOKS).as_posix(): p.read_bytes() for p in files}


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_examples_writes_every_notebook_and_model_as_the_tests_run_them(tmp_path, capsys):
    assert main(["examples", str(tmp_path / "new" / "examples")]) == 0
    written = tree(tmp_path / "new" / "examples")
    assert written == repository_examples()
    assert {"quickstart.ipynb", "serving-containers.ipynb", "models/tf_serving.py", "models/iris.py"} <= set(written)
    assert "conftest.py" not in written and "sanitize.cfg" not in written  # the test suite's, not the user's
    out = capsys.readouterr().out
    notebooks, models = len(list(NOTEBOOKS.glob("*.ipynb"))), len(list(NOTEBOOKS.glob("models/*.py")))
    assert f"wrote {notebooks} notebooks and {models} models" in out and "jupyter lab" in out


def test_an_empty_folder_is_fine(tmp_path):
    assert main(["examples", str(tmp_path)]) == 0
    assert tree(tmp_path) == repository_examples()


def test_a_folder_that_is_not_empty_is_refused_in_one_line_and_left_alone(tmp_path, capsys):
    (tmp_path / "quickstart.ipynb").write_text("my own edits")
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["examples", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"sm-async-nb examples: {tmp_path} is not empty (2 entries): choose a new or empty folder, or add "
                   "--force to write the examples over files of the same names (others stay).\n")
    assert tree(tmp_path) == {"quickstart.ipynb": b"my own edits", "notes.txt": b"mine"}


def test_force_replaces_files_of_the_same_names_and_keeps_the_others(tmp_path):
    (tmp_path / "quickstart.ipynb").write_text("old copy")
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["examples", str(tmp_path), "--force"]) == 0
    assert tree(tmp_path) == {**repository_examples(), "notes.txt": b"mine"}


def test_a_file_is_not_a_folder(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["examples", str(target)]) == 2
    assert capsys.readouterr().err == f"sm-async-nb examples: {target} is a file, not a folder: choose a new or " \
                                      "empty folder.\n"


def test_version_is_the_installed_distributions(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"sm-async-nb {metadata.version('sm_async_nb')}\n"
    assert sm_async_nb.__version__ == metadata.version("sm_async_nb")
