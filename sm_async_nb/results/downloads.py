"""Raw outputs to files: ``batch.download(folder)``. Streamed to disk (never whole in memory),
concurrently, named after each input object (``a.wav`` → ``a.out``, or ``a.json`` when the output's
key or content type says JSON); names that collide, or that already exist, get ``-2``, ``-3``...
Existing files are never overwritten unless asked."""

from __future__ import annotations

import mimetypes
import os
import threading
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ..aws.clients import NOT_FOUND_CODES, as_error, error_code
from ..aws.s3uri import S3Uri
from ..context import Context
from ..errors import OutputMissing, ValidationError
from ..records import InvocationRecord, Status

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


class _Names:
    """Hands out file names no one else in this download, and no existing file, has."""

    def __init__(self, folder: Path, overwrite: bool):
        self.folder, self.overwrite = folder, overwrite
        self._taken: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, stem: str, suffix: str) -> Path:
        with self._lock:
            for n in range(1, 100_000):
                name = f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}"
                path = self.folder / name
                if name in self._taken:
                    continue
                if path.exists() and not self.overwrite:
                    continue
                self._taken.add(name)
                return path
        raise ValidationError(f"Too many files named {stem}*{suffix} in {self.folder}.")


def download(ctx: Context, parts: Sequence[InvocationRecord], folder: str | os.PathLike[str], *,
             overwrite: bool = False) -> list[Path]:
    """Every COMPLETED part's output as a file in ``folder`` (created), in batch order. Local
    problems (a bad folder, a target name taken by a folder) are found before any download.

    Raises:
        ValidationError: ``folder`` is not a path or cannot be created, ``overwrite`` is not a bool,
            or a target name is an existing non-file (with ``overwrite=True``).
        OutputMissing: an output was removed from S3. AwsError: S3 refused.
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
    types = list(ctx.pool.map(lambda r: _content_type(ctx, r), done))
    # Names are handed out in batch order (deterministic); the bytes then come concurrently.
    paths = [names.claim(_stem(r), _suffix(r, t)) for r, t in zip(done, types, strict=True)]
    for path in paths:  # only overwrite=True hands out existing names: they must be files
        if (path.exists() or path.is_symlink()) and not path.is_file():
            raise ValidationError(f"Cannot overwrite {path}: it is not a file (a folder?); nothing was "
                                  "downloaded. Move it away or download into another folder.", parameter="folder")
    return list(ctx.pool.map(lambda rp: _fetch(ctx, *rp), zip(done, paths, strict=True)))


def _content_type(ctx: Context, record: InvocationRecord) -> str | None:
    assert record.output_location is not None
    location = S3Uri.parse(record.output_location)
    try:
        head = ctx.aws.s3.head_object(Bucket=location.bucket, Key=location.key)
    except Exception as exc:
        if error_code(exc) in NOT_FOUND_CODES:
            raise OutputMissing(record.inference_id, record.output_location) from None
        raise as_error(exc, bucket=location.bucket, doing=f"Downloading the output of {record.inference_id}") from None
    content_type: str | None = head.get("ContentType")
    return content_type


def _fetch(ctx: Context, record: InvocationRecord, path: Path) -> Path:
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
        os.replace(partial, path)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, Exception):
            raise as_error(exc, bucket=location.bucket,
                           doing=f"Downloading the output of {record.inference_id}") from None
        raise
    return path
