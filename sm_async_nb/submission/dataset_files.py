"""Which files a dataset source names: one file, a folder (or S3 prefix), or a glob.

A path that exists is taken literally even when its name holds glob characters (``d[1].csv``);
only otherwise is it a glob, with the same meaning locally and on S3: ``*`` and ``?`` stay within
one path segment and ``**`` spans any number of them. Folders are walked without following
symbolic links (a link to a parent would repeat files without end); names starting with ``_`` or
``.`` (``_SUCCESS``, ``.crc``) are not data. Below a folder (or a glob's literal folders), ``key=value``
folders are hive partitions: their keys become columns (``datasets``).
"""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass
from typing import Any

from ..aws import arrowio
from ..context import Context
from ..errors import ValidationError

_WILDCARDS = "*?["
_NOT_DATA = ("_", ".")


def segments_match(pattern: str, path: str) -> bool:
    """Glob ``pattern`` against ``path`` one ``/``-segment at a time (``**``: any number of them)."""
    def match(pat: list[str], parts: list[str]) -> bool:
        if not pat:
            return not parts
        if pat[0] == "**":
            return any(match(pat[1:], parts[i:]) for i in range(len(parts) + 1))
        return bool(parts) and fnmatch.fnmatchcase(parts[0], pat[0]) and match(pat[1:], parts[1:])

    return match(pattern.split("/"), path.split("/"))


def _is_data(name: str) -> bool:
    return not name.startswith(_NOT_DATA)


def _walk_local(folder: str) -> list[str]:
    found = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if _is_data(d))
        found += [os.path.join(root, n) for n in names if _is_data(n) and os.path.isfile(os.path.join(root, n))]
    return sorted(found)


def _glob(filesystem: Any, path: str) -> list[str]:
    from pyarrow import fs as pafs

    if isinstance(filesystem, pafs.LocalFileSystem):
        return sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
    base = path[:min(path.find(c) for c in _WILDCARDS if c in path)].rsplit("/", 1)[0]
    listed = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    return sorted(i.path for i in listed if i.type == pafs.FileType.File and segments_match(path, i.path))


@dataclass(frozen=True)
class Found:
    """The data files of a source, and the folder hive partitions (``year=2024/``) are read below (None:
    one file, nothing to partition)."""

    filesystem: Any
    files: list[str]
    base: str | None


def find(ctx: Context, source: str) -> Found:
    """The filesystem and the data files of ``source``, sorted.

    Raises:
        ValidationError: no bucket, nothing there, no match, or a folder with no data files.
    """
    from pyarrow import fs as pafs

    if arrowio.is_s3(source) and not source[len("s3://"):].split("/", 1)[0]:
        raise ValidationError(f"{source!r} names no bucket: write s3://bucket/prefix/.", parameter="source")
    filesystem, path = arrowio.resolve(ctx.aws, source)
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.NotFound and any(c in path for c in _WILDCARDS):
        matches = _glob(filesystem, path)
        if not matches:
            raise ValidationError(f"No file matches {source}.", parameter="source")
        return Found(filesystem, matches, _literal_folder(path))
    if info.type == pafs.FileType.NotFound:
        raise ValidationError(f"{source} does not exist: check the path.", parameter="source")
    if info.type != pafs.FileType.Directory:
        return Found(filesystem, [path], None)
    if isinstance(filesystem, pafs.LocalFileSystem):
        files = _walk_local(path)
    else:
        listed = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
        files = sorted(i.path for i in listed if i.type == pafs.FileType.File
                       and all(_is_data(part) for part in i.path[len(path):].split("/") if part))
    if not files:
        raise ValidationError(f"{source} holds no data files.", parameter="source")
    return Found(filesystem, files, path.rstrip("/") or path)


def _literal_folder(pattern: str) -> str:
    """The folder a glob starts from: its segments before the first one with a wildcard."""
    segments = pattern.split("/")
    literal = next(i for i, part in enumerate(segments) if any(c in part for c in _WILDCARDS))
    return "/".join(segments[:literal]) or "/"


__all__ = ["Found", "find", "segments_match"]
