"""Raw outputs to files: ``batch.download(folder)``. Streamed to disk (never whole in memory),
concurrently, named after each input object (``a.wav`` → ``a.out``, or ``a.json`` when the output's
key or content type says JSON); names that collide, or that already exist, get ``-2``, ``-3``...
Existing files are never overwritten unless asked; a file that already holds its output (same size,
modification time = the object's LastModified, which a download sets) is kept, so a re-run fills in
what is missing instead of making copies. One failed part never leaves the others half done: they
finish (or, for a failure every part would meet, are not started) before the failures are reported."""

from __future__ import annotations

import mimetypes
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..aws.clients import NOT_FOUND_CODES, STOPS_BATCH_KINDS, as_error, error_code
from ..aws.s3uri import S3Uri
from ..context import Context
from ..errors import AwsError, OutputMissing, ValidationError
from ..records import InvocationRecord, Status

WAIT_SLICE_S = 0.05  # how long a pending Ctrl-C waits to be raised in the calling thread
_SAFE = "".join(chr(c) for c in range(32, 127) if chr(c) not in '/\\:*?"<>|')


def _stem(record: InvocationRecord) -> str:
    """The input object's name without its suffix (the inference id for inline inputs)."""
    name = PurePosixPath(S3Uri.parse(record.input_location).key).name if record.input_location else ""
    stem = PurePosixPath(name).stem or record.inference_id
    cleaned = "".join(c if c in _SAFE else "_" for c in stem).strip(". ") or "output"
    return cleaned[:120]


def _suffix(record: InvocationRecord, content_type: str | None) -> str:
    key_suffix = PurePosixPath(S3Uri.parse(record.output_location or "s3://b/x.out").key).suffix
    if key_suffix and key_suffix != ".out":
        return key_suffix
    guessed = mimetypes.guess_extension((content_type or "").split(";")[0].strip()) if content_type else None
    return guessed or ".out"


@dataclass(frozen=True)
class _Output:
    """What HEAD says of one output: how to name its file, and how to recognise a file that holds it."""

    content_type: str | None
    size: int
    last_modified: float


class _Names:
    """Hands out file names no one else in this download, and no existing file, has; an existing file
    that already holds the output (an earlier download: its size, and its modification time set to the
    object's LastModified, as ``aws s3 sync`` compares them) is handed out again, to be kept as it is."""

    def __init__(self, folder: Path, overwrite: bool):
        self.folder, self.overwrite = folder, overwrite
        self._taken: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, stem: str, suffix: str, output: _Output) -> tuple[Path, bool]:
        """The path for an output, and whether it already holds it (nothing to download)."""
        with self._lock:
            for n in range(1, 100_000):
                name = f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}"
                path = self.folder / name
                if name in self._taken:
                    continue
                if path.exists() or path.is_symlink():
                    if _holds(path, output):
                        self._taken.add(name)
                        return path, not self.overwrite
                    if not self.overwrite:
                        continue
                self._taken.add(name)
                return path, False
        raise ValidationError(f"Too many files named {stem}*{suffix} in {self.folder}.")


def _holds(path: Path, output: _Output) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return False
    return path.is_file() and not path.is_symlink() and stat.st_size == output.size \
        and int(stat.st_mtime) == int(output.last_modified)


def download(ctx: Context, parts: Sequence[InvocationRecord], folder: str | os.PathLike[str], *,
             overwrite: bool = False) -> list[Path]:
    """Every COMPLETED part's output as a file in ``folder`` (created), in batch order. Local
    problems (a bad folder, a target name taken by a folder) are found before any download.

    A part that fails does not stop the others (unless every other one would fail the same way:
    credentials, network, permissions: those not started are cancelled); once nothing is in flight,
    the first failure is raised, its message naming every failed part. A re-run keeps the files that
    already hold their outputs and downloads only the rest (no ``-2`` copies).

    Raises:
        ValidationError: ``folder`` is not a path or cannot be created, ``overwrite`` is not a bool,
            or a target name is an existing non-file (with ``overwrite=True``).
        OutputMissing: an output was removed from S3. AwsError: S3 refused. (With ``.failures``: every
            failed part's inference id and error; ``.paths``: the files in place.)
    """
    if not isinstance(folder, (str, os.PathLike)) or isinstance(folder, bool):
        raise ValidationError(f"folder must be a path, not {type(folder).__name__}.", parameter="folder")
    if not isinstance(overwrite, bool):
        raise ValidationError(f"overwrite must be True or False, not {overwrite!r}.", parameter="overwrite")
    target = Path(os.fspath(folder)).expanduser()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError(f"Cannot create the folder {target} ({exc.strerror or exc}).") from None
    if not os.access(target, os.W_OK | os.X_OK):
        raise ValidationError(f"Cannot write into the folder {target} (permission denied).", parameter="folder")
    names = _Names(target, overwrite)
    done = [r for r in parts if r.status is Status.COMPLETED]
    failures: dict[str, BaseException] = {}
    heads = _each(ctx, done, lambda r: _head(ctx, r), failures)
    # Names are handed out in batch order (deterministic, so a re-run finds the same files); the bytes
    # then come concurrently.
    planned: list[tuple[InvocationRecord, Path, bool, _Output]] = []
    for record in done:
        output = heads.get(record.inference_id)
        if output is not None:
            planned.append((record, *names.claim(_stem(record), _suffix(record, output.content_type), output),
                            output))
    for _, path, _, _ in planned:  # only overwrite=True hands out existing names: they must be files
        if (path.exists() or path.is_symlink()) and not path.is_file():
            raise ValidationError(f"Cannot overwrite {path}: it is not a file (a folder?); nothing was "
                                  "downloaded. Move it away or download into another folder.", parameter="folder")
    todo = [(r, p, o) for r, p, kept, o in planned if not kept]
    fetched = _each(ctx, todo, lambda item: _fetch(ctx, *item), failures, key=lambda item: item[0].inference_id)
    paths = [p for r, p, kept, _ in planned if kept or r.inference_id in fetched]
    if failures:
        raise _report(done, failures, paths, target)
    return paths


def _each(ctx: Context, items: Sequence[Any], work: Callable[[Any], Any], failures: dict[str, BaseException], *,
          key: Callable[[Any], str] = lambda r: r.inference_id) -> dict[str, Any]:
    """``work`` on every item on the pool; {key: result} of those that worked, failures into ``failures``.
    A failure every other item would meet too cancels the items not started; Ctrl-C cancels them and
    waits for those in flight (each removes its partial file) before it is raised."""
    futures = {ctx.pool.submit(work, item): key(item) for item in items}
    results: dict[str, Any] = {}
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, timeout=WAIT_SLICE_S, return_when=FIRST_COMPLETED)
            for future in finished:
                if future.cancelled():
                    continue
                error = future.exception()
                if error is None:
                    results[futures[future]] = future.result()
                    continue
                failures[futures[future]] = error
                if _stops_all(error):
                    for other in pending:
                        other.cancel()
    except KeyboardInterrupt:
        for other in pending:
            other.cancel()
        wait(pending)
        raise
    return results


def _stops_all(error: BaseException) -> bool:
    return isinstance(error, AwsError) and error.kind in STOPS_BATCH_KINDS


def _report(done: Sequence[InvocationRecord], failures: dict[str, BaseException], paths: list[Path],
            folder: Path) -> BaseException:
    """The first failure (in batch order), its message naming every other one and what is in place."""
    order = [r.inference_id for r in done if r.inference_id in failures]
    first = failures[order[0]]
    others = [f"{iid}: {failures[iid]}" for iid in order[1:4]]
    more = f"; and {len(order) - 4} more" if len(order) > 4 else ""
    text = str(first)
    if others:
        text += f" Also failed: {'; '.join(others)}{more}."
    skipped = len(done) - len(order) - len(paths)
    text += (f" {len(order)} of {len(done)} outputs were not downloaded"
             + (f" ({skipped} not tried after that error)" if skipped > 0 else "")
             + f"; the {len(paths)} others are in {folder}: a re-run downloads only what is missing.")
    first.args = (text,)
    first.failures = {iid: failures[iid] for iid in order}  # type: ignore[attr-defined]
    first.paths = paths  # type: ignore[attr-defined]
    return first


def _head(ctx: Context, record: InvocationRecord) -> _Output:
    assert record.output_location is not None
    location = S3Uri.parse(record.output_location)
    try:
        head = ctx.aws.s3.head_object(Bucket=location.bucket, Key=location.key)
    except Exception as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            raise OutputMissing(record.inference_id, record.output_location) from None
        raise as_error(exc, bucket=location.bucket, doing=f"Downloading the output of {record.inference_id}") from None
    return _Output(head.get("ContentType"), int(head.get("ContentLength") or 0), head["LastModified"].timestamp())


def _fetch(ctx: Context, record: InvocationRecord, path: Path, output: _Output) -> Path:
    assert record.output_location is not None
    location = S3Uri.parse(record.output_location)
    partial = path.with_name(f".{path.name}.part")
    try:
        stream = open(partial, "wb")
    except OSError as exc:
        raise ValidationError(f"Cannot write {path}: {exc.strerror or exc}.", parameter="folder") from None
    try:
        with stream:
            ctx.aws.s3.download_fileobj(location.bucket, location.key, stream)
        os.utime(partial, (output.last_modified, output.last_modified))  # how a re-run recognises it
        os.replace(partial, path)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, Exception):
            if error_code(exc) in NOT_FOUND_CODES:
                raise OutputMissing(record.inference_id, record.output_location) from None
            raise as_error(exc, bucket=location.bucket,
                           doing=f"Downloading the output of {record.inference_id}") from None
        raise
    return path
