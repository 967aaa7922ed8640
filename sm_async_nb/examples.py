"""`sm-async-nb examples DIR`: the example notebooks and the models they use, written into DIR.

They are the very files the test suite runs: ``sm_async_nb/example_notebooks`` is a link to the
repository's ``notebooks/`` folder, and the wheel carries copies of its notebooks and of
``models/*.py`` (package data). The models keep their place next to the notebooks (``models/``), so
a notebook that starts the local stack with ``--model models/x.py`` finds its model from DIR.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

SOURCE = Path(__file__).resolve().parent / "example_notebooks"
PATTERNS = ("*.ipynb", "models/*.py")  # what the wheel ships (pyproject.toml's package data)


def example_files(source: Path = SOURCE) -> dict[PurePosixPath, Path]:
    """Each example file by its path relative to the folder it is written into."""
    return {PurePosixPath(path.relative_to(source).as_posix()): path
            for pattern in PATTERNS for path in sorted(source.glob(pattern)) if path.is_file()}


def write_examples(destination: str | os.PathLike[str], *, force: bool = False) -> list[Path]:
    """Write the example notebooks and their models into ``destination`` (created if missing).

    Args:
        destination: a new or empty folder.
        force: write into a folder that is not empty, replacing files of the same names (the
            others are left alone).

    Returns:
        The files written.

    Raises:
        ValueError: ``destination`` is a file, or a folder that is not empty and ``force`` is false;
            nothing was written.
        OSError: the folder or a file could not be written.
    """
    folder = Path(destination).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder: choose a new or empty folder.")
    if folder.is_dir() and not force:
        entries = sum(1 for _ in folder.iterdir())
        if entries:
            raise ValueError(f"{folder} is not empty ({entries} entries): choose a new or empty folder, or add "
                             "--force to write the examples over files of the same names (others stay).")
    files = example_files()
    if not files:  # a broken install: say so rather than write nothing
        raise OSError(f"no example notebooks found in {SOURCE}: reinstall sm_async_nb")
    written = []
    for relative, source in files.items():
        target = folder.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            partial.write_bytes(source.read_bytes())
            os.replace(partial, target)  # a file of that name is replaced whole, never half-written
        finally:
            partial.unlink(missing_ok=True)
        written.append(target)
    return written
