"""Where ``write_results`` puts its Parquet: checked before anything is written, written out of
sight, and put in place only when the whole run succeeded (SPEC §12: nothing lost, no partial output).

A destination ending in ``.parquet`` is one file (one S3 object); anything else is a folder (an S3
prefix) of ``part-NNNNN.parquet`` files. An existing file, or a non-empty folder or prefix, is
refused unless ``overwrite=True``.

The check before writing is not trusted at the end: the commit itself refuses to replace anything
that appeared (or changed) at the destination while the results were written, so two writers, or a
user's own file arriving meanwhile, never lose data. Locally a new name is taken with ``os.link``
(or an exclusive create where links are not supported), which fail on an existing name; a new folder
with ``os.mkdir``; a replaced file or part must still be the one seen at the check (device, inode,
size, modification time). On S3 a new object is completed with ``IfNoneMatch="*"`` and a replaced one
with ``IfMatch=<the ETag seen at the check>`` (S3 conditional writes), and an old part is deleted only
if HEAD still shows the ETag seen at the check. When the destination changed, the error says so,
nothing there was replaced, and what this call wrote is removed.

Local file: written as a hidden sibling ``.NAME.<random>.tmp`` and put in place at the end.
Local folder that does not exist yet: written as a hidden sibling folder; at the end the folder is
created (``mkdir``) and the parts moved in.
Existing local folder (empty, or with ``overwrite=True``): the parts are written into a hidden
staging folder inside it; at the end our old part files (``part-NNNNN.parquet``) are moved aside,
the new ones linked in, and the old ones deleted. Only files named ``part-NNNNN.parquet`` are ever
replaced or deleted: the user's other files in the folder are kept as they are.
S3: every object is a multipart upload completed only once the whole run succeeded (an upload is
invisible until then), so on an error the uploads are aborted and nothing under the destination
changed. With ``overwrite=True`` the old ``part-NNNNN.parquet`` objects the new run did not
replace are deleted at the end; other keys are kept.
On any error (Ctrl-C included) what this call wrote is removed, the previous content stays.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from ..aws.clients import CONDITION_CODES, NO_BUCKET_CODES, NOT_FOUND_CODES, AwsClients, as_error, error_code
from ..aws.s3uri import S3Uri
from ..errors import AwsError, ValidationError

log = logging.getLogger(__name__)

PART = re.compile(r"part-\d{5}\.parquet")
PART_SIZE = 8 * 2**20  # S3 multipart part size (S3's minimum is 5 MiB, except for the last part)


def part_name(number: int) -> str:
    return f"part-{number:05d}.parquet"


def open_destination(aws: AwsClients, dest: object, *, overwrite: bool) -> LocalDestination | S3Destination:
    """The checked destination of ``dest`` (a path or ``s3://`` URI); nothing is written yet.

    Raises:
        ValidationError: not a path, a bad URI, an existing file or non-empty folder without
            ``overwrite``, a folder where a file is wanted (or the reverse), a parent that is a file.
        AwsError: the bucket does not exist or S3 refused the listing.
    """
    if not isinstance(dest, (str, os.PathLike)) or isinstance(dest, bool):
        raise ValidationError(f"dest must be a path or an s3:// URI, not {type(dest).__name__}.", parameter="dest")
    if not isinstance(overwrite, bool):
        raise ValidationError(f"overwrite must be True or False, not {overwrite!r}.", parameter="overwrite")
    text = os.fspath(dest)
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"dest must be a non-empty path or s3:// URI, not {text!r}.", parameter="dest")
    single = text.endswith(".parquet")
    if text.startswith("s3://"):
        try:
            uri = S3Uri.parse(text)
        except ValueError as exc:
            raise ValidationError(f"{exc}.", parameter="dest") from None
        return S3Destination(aws, uri, single=single, overwrite=overwrite)
    return LocalDestination(Path(os.path.abspath(os.path.expanduser(text))), single=single, overwrite=overwrite)


def _cannot(path: Path, exc: OSError) -> ValidationError:
    return ValidationError(f"Cannot write to {path}: {exc.strerror or exc}.", parameter="dest")


class LocalDestination:
    """A local file or folder, written to a temporary sibling (or staging folder) first."""

    def __init__(self, path: Path, *, single: bool, overwrite: bool):
        self.path, self.single, self.overwrite = path, single, overwrite
        if path.parent == path:
            raise ValidationError(f"Cannot write results to {path}: name a file or a folder.", parameter="dest")
        self._check()
        self._created: list[Path] = []  # folders this call made (removed again on error)
        self._existing_folder = not single and path.is_dir()
        # What was there at the check: the commit replaces only that, never what appeared since.
        self._seen = _identity(path) if single else None
        self._parts_seen = ({p.name: _identity(p) for p in path.iterdir() if PART.fullmatch(p.name)}
                            if self._existing_folder else {})
        self.staging: Path | None = None  # made on the first open(): nothing is written before
        self._keep = False  # a failed roll-back left old parts in the staging folder: never delete it

    def _prepare(self) -> Path:
        token = secrets.token_hex(4)
        path = self.path
        try:
            self._make_parents(path.parent)
            if self.single:
                self.staging = path.with_name(f".{path.name}.{token}.tmp")
            else:
                staging = path / f".sm-async-nb-{token}.tmp" if self._existing_folder else \
                    path.with_name(f".{path.name}.{token}.tmp")
                staging.mkdir()
                self.staging = staging
        except OSError as exc:
            self.discard()
            raise _cannot(path, exc) from None
        return self.staging

    def __str__(self) -> str:
        return str(self.path)

    def _check(self) -> None:
        path = self.path
        for parent in path.parents:  # the nearest existing ancestor must be a folder
            if parent.exists() or parent.is_symlink():
                if not parent.is_dir():
                    raise ValidationError(f"Cannot write to {path}: {parent} is a file, not a folder.",
                                          parameter="dest")
                break
        if self.single:
            if path.is_dir():
                raise ValidationError(f"{path} is a folder; a destination ending in .parquet is one file "
                                      "(name a folder without the .parquet suffix to write a dataset).",
                                      parameter="dest")
            if (path.exists() or path.is_symlink()) and not self.overwrite:
                raise ValidationError(f"{path} already exists; pass overwrite=True to replace it, or choose "
                                      "another name.", parameter="dest")
        elif path.exists() or path.is_symlink():
            if not path.is_dir():
                raise ValidationError(f"{path} is a file, not a folder; end the name with .parquet to write "
                                      "one file, or choose another folder.", parameter="dest")
            if any(path.iterdir()) and not self.overwrite:
                raise ValidationError(f"The folder {path} is not empty; pass overwrite=True to replace its "
                                      "part-NNNNN.parquet files (other files are kept), or choose an empty "
                                      "folder.", parameter="dest")

    def _make_parents(self, folder: Path) -> None:
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for item in reversed(missing):
            item.mkdir()
            self._created.append(item)

    def open(self, name: str | None) -> BinaryIO:
        """A new file to write (``name`` is None for the single file)."""
        staging = self.staging or self._prepare()
        target = staging if name is None else staging / name
        try:
            stream = open(target, "wb")
        except OSError as exc:
            raise _cannot(self.path, exc) from None
        return stream

    def cancel(self) -> None:
        """Nothing to stop locally (files are removed by discard())."""

    def reset(self) -> None:
        """Drop what was written so far, to write everything again (a wider schema)."""
        self.discard()

    def commit(self) -> None:
        """Put the new output in place, replacing only what was there at the check.

        Raises:
            ValidationError: the destination appeared or changed meanwhile (nothing there was replaced),
                or it cannot be written.
        """
        assert self.staging is not None  # something was written
        try:
            if self.single:
                self._commit_file(self.staging)
            elif not self._existing_folder:
                self._commit_new_folder(self.staging)
            else:
                self._swap_parts()
        except OSError as exc:
            self.discard()
            raise _cannot(self.path, exc) from None
        except ValidationError:
            self.discard()
            raise
        log.debug("results committed to %s", self.path)

    def _commit_file(self, staging: Path) -> None:
        if self._seen is None:
            _link_new(staging, self.path, self.path)
            staging.unlink()
            return
        if _identity(self.path) != self._seen:  # overwrite=True, but not of what appeared since the check
            raise _appeared(self.path)
        os.replace(staging, self.path)

    def _commit_new_folder(self, staging: Path) -> None:
        try:
            self.path.mkdir()
        except FileExistsError:
            raise _appeared(self.path) from None
        moved: list[Path] = []
        try:
            for item in sorted(staging.iterdir()):
                os.replace(item, self.path / item.name)  # into the folder this call just made
                moved.append(self.path / item.name)
        except OSError:
            for item in moved:
                item.unlink(missing_ok=True)
            self._created.append(self.path)  # ours: removed again by discard() when empty
            raise
        staging.rmdir()

    def _swap_parts(self) -> None:
        assert self.staging is not None
        old = [p for p in self.path.iterdir() if PART.fullmatch(p.name) and (p.is_file() or p.is_symlink())]
        if {p.name: _identity(p) for p in old} != self._parts_seen:
            raise _appeared(self.path)
        aside = self.staging / ".old"
        aside.mkdir()
        moved_old: list[Path] = []
        moved_new: list[Path] = []
        try:
            for item in old:
                os.replace(item, aside / item.name)
                moved_old.append(item)
            for item in sorted(p for p in self.staging.iterdir() if PART.fullmatch(p.name)):
                _link_new(item, self.path / item.name, self.path)
                moved_new.append(self.path / item.name)
        except (OSError, ValidationError):
            for item in moved_new:  # roll back: the folder as it was
                item.unlink(missing_ok=True)
            for item in moved_old:
                try:
                    os.replace(aside / item.name, item)
                except OSError:  # never delete the old parts: keep the staging folder that holds them
                    self._keep = True
                    log.warning("could not put %s back; the previous run's parts are kept in %s", item, aside)
            raise
        shutil.rmtree(self.staging, ignore_errors=True)

    def discard(self) -> None:
        """Remove everything this call wrote (the staging file or folder, folders it created)."""
        staging, self.staging = self.staging, None
        if staging is not None and not self._keep:
            if staging.is_dir() and not staging.is_symlink():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.unlink(missing_ok=True)
        created, self._created = self._created, []
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                break


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    """What a file is, to tell it from one that replaced it: device, inode, size, modification time."""
    try:
        stat = path.lstat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _appeared(path: Path | str) -> ValidationError:
    return ValidationError(f"{path} appeared or changed while the results were written: nothing there was replaced "
                           "and what this call wrote was removed. Write again (overwrite=True replaces it) or choose "
                           "another name.", parameter="dest")


def _link_new(source: Path, target: Path, shown: Path) -> None:
    """Give ``source`` the name ``target``, never over an existing one (os.link refuses; where hard links
    are not supported, an exclusive create claims the name first)."""
    try:
        os.link(source, target)
        return
    except FileExistsError:
        raise _appeared(shown) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
    try:
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise _appeared(shown) from None
    os.replace(source, target)  # over the placeholder this call just made


class _Upload:
    """A write-only stream into one S3 multipart upload, completed only by ``complete()``."""

    def __init__(self, aws: AwsClients, bucket: str, key: str, doing: str):
        self.aws, self.bucket, self.key, self.doing = aws, bucket, key, doing
        self.buffer = bytearray()
        self.parts: list[dict[str, Any]] = []
        self.position = 0
        self.closed = self.aborted = False
        self.upload_id = self._call(lambda s3: s3.create_multipart_upload(Bucket=bucket, Key=key))["UploadId"]

    def _call(self, fn: Any) -> Any:
        try:
            return fn(self.aws.s3)
        except Exception as exc:
            raise _s3_error(exc, self.bucket, self.doing) from None

    def _send(self) -> None:
        body, self.buffer = bytes(self.buffer), bytearray()
        number = len(self.parts) + 1
        answer = self._call(lambda s3: s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                                      PartNumber=number, Body=body))
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def write(self, data: Any) -> int:
        if self.aborted:
            return len(data)
        self.buffer += data
        self.position += len(data)
        if len(self.buffer) >= PART_SIZE * (1 + len(self.parts) // 1000):  # S3 allows 10,000 parts
            self._send()
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        """Send the last part; the object appears only on complete()."""
        if self.closed or self.aborted:
            return
        if self.buffer or not self.parts:
            self._send()
        self.closed = True

    def complete(self, etag: str | None) -> None:
        """Make the object visible, only over the object seen at the check (``etag``), or where there was
        none (S3 conditional writes: nothing that appeared meanwhile is replaced).

        Raises:
            ValidationError: the key appeared or changed meanwhile (412, or 409 for a concurrent write).
        """
        condition: Any = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        parts: Any = self.parts
        try:
            self.aws.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                                  MultipartUpload={"Parts": parts}, **condition)
        except Exception as exc:
            if error_code(exc) in CONDITION_CODES:
                raise _appeared(f"s3://{self.bucket}/{self.key}") from None
            raise _s3_error(exc, self.bucket, self.doing) from None

    def abort(self) -> None:
        if self.aborted:
            return
        self.aborted = True
        try:
            self.aws.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except Exception as exc:  # left behind, it stays invisible (and billed) until aborted or expired
            log.warning("could not abort the upload of s3://%s/%s: %s", self.bucket, self.key, exc)


def _s3_error(exc: BaseException, bucket: str, doing: str) -> BaseException:
    if error_code(exc) in NO_BUCKET_CODES:
        return AwsError(f"{doing}: bucket {bucket!r} does not exist; create it or write to another bucket.",
                        code=error_code(exc), kind="no_bucket")
    return as_error(exc, bucket=bucket, doing=doing)


class S3Destination:
    """An S3 object or prefix, written as multipart uploads completed at the end."""

    def __init__(self, aws: AwsClients, uri: S3Uri, *, single: bool, overwrite: bool):
        self.aws, self.uri, self.single, self.overwrite = aws, uri, single, overwrite
        self.bucket = uri.bucket
        self.prefix = uri.key if single else (uri.key.rstrip("/") + "/" if uri.key.strip("/") else "")
        self.doing = f"Writing results to {self}"
        self.uploads: list[_Upload] = []
        self.committed: list[str] = []
        self._backup_at: str | None = None
        existing = self._list(self.prefix, limit=None if overwrite else 1)
        if single and self.prefix in existing and not overwrite:
            raise ValidationError(f"{self} already exists; pass overwrite=True to replace it, or choose another "
                                  "name.", parameter="dest")
        if not single and existing and not overwrite:
            raise ValidationError(f"{self} is not empty; pass overwrite=True to replace its part-NNNNN.parquet "
                                  "objects (other keys are kept), or choose an empty prefix.", parameter="dest")
        # What was there at the check (key -> ETag): the commit replaces or deletes only that.
        self._seen = {k: e for k, e in existing.items() if (k == self.prefix if single else True)}

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _list(self, prefix: str, limit: int | None = None) -> dict[str, str]:
        """The keys under ``prefix`` and their ETags (at most ``limit``)."""
        keys: dict[str, str] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if limit is not None:
                kwargs["MaxKeys"] = limit
            if token:
                kwargs["ContinuationToken"] = token
            try:
                page = self.aws.s3.list_objects_v2(**kwargs)
            except Exception as exc:
                raise _s3_error(exc, self.bucket, self.doing) from None
            keys.update((o["Key"], str(o.get("ETag", ""))) for o in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if limit is not None or not token:
                return keys

    def open(self, name: str | None) -> _Upload:
        key = self.prefix if name is None else self.prefix + name
        upload = _Upload(self.aws, self.bucket, key, self.doing)
        self.uploads.append(upload)
        return upload

    def cancel(self) -> None:
        """Abort every upload: nothing this call sent becomes visible."""
        for upload in self.uploads:
            upload.abort()

    def reset(self) -> None:
        """Drop what was written so far, to write everything again (a wider schema)."""
        self.cancel()
        self.discard()
        self.uploads = []

    def commit(self) -> None:
        """Complete every upload, each only over the object seen at the check or where there was none
        (conditional writes). A replaced object is first copied aside, so that a failure half-way puts
        the previous content back (completing an upload replaces its key at once).

        Raises:
            ValidationError: a key appeared or changed meanwhile; what this call completed is undone.
        """
        backups: dict[str, str] = {}
        try:
            for upload in self.uploads:
                seen = self._seen.get(upload.key)
                if seen is not None:
                    backups[upload.key] = self._copy(upload.key, f"{self._backup_prefix()}{upload.key}")
                upload.complete(seen)
                self.committed.append(upload.key)
        except BaseException:
            self.cancel()
            self._restore(backups)
            raise
        finally:
            try:
                self._delete(list(backups.values()), "Removing the copies of the previous results")
            except AwsError as exc:  # the results are in place; only the copies are left over
                log.warning("%s", exc)
        if self.overwrite and not self.single:
            new = set(self.committed)
            stale = [k for k in self._seen if k not in new and PART.fullmatch(k[len(self.prefix):])]
            self._delete(self._unchanged(stale), f"Removing the old parts under {self}")

    def _unchanged(self, keys: list[str]) -> list[str]:
        """The keys that still hold the object seen at the check (one replaced since is not ours to delete)."""
        kept = []
        for key in keys:
            try:
                etag = str(self.aws.s3.head_object(Bucket=self.bucket, Key=key).get("ETag", ""))
            except Exception as exc:
                if error_code(exc) in NOT_FOUND_CODES:
                    continue
                raise _s3_error(exc, self.bucket, f"Checking the old part s3://{self.bucket}/{key}") from None
            if etag == self._seen[key]:
                kept.append(key)
            else:
                log.warning("s3://%s/%s changed while the results were written: it is kept", self.bucket, key)
        return kept

    def _backup_prefix(self) -> str:
        if self._backup_at is None:  # "_" first: dataset readers skip it, as they skip _SUCCESS
            self._backup_at = f"_sm-async-nb-previous-{secrets.token_hex(6)}/"
        return self._backup_at

    def _copy(self, source: str, target: str) -> str:
        try:
            self.aws.s3.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source})
        except Exception as exc:
            raise _s3_error(exc, self.bucket, f"Keeping a copy of s3://{self.bucket}/{source}") from None
        return target

    def _restore(self, backups: dict[str, str]) -> None:
        """After a failure: every key this call completed gets its previous object back (or goes)."""
        for key in self.committed:
            try:
                if key in backups:
                    self._copy(backups[key], key)
                else:
                    self.aws.s3.delete_object(Bucket=self.bucket, Key=key)
            except Exception as exc:  # then the copy stays where it is: say where
                log.warning("could not restore s3://%s/%s (its previous content is at %s): %s", self.bucket, key,
                            backups.get(key, "-"), exc)
                backups.pop(key, None)
        self.committed = []

    def _delete(self, keys: list[str], doing: str) -> None:
        for start in range(0, len(keys), 1000):
            chunk: list[Any] = [{"Key": k} for k in keys[start:start + 1000]]
            try:
                self.aws.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
            except Exception as exc:
                raise _s3_error(exc, self.bucket, doing) from None

    def discard(self) -> None:
        """Delete only the objects this call completed (normally none: uploads are aborted)."""
        for key in self.committed:
            try:
                self.aws.s3.delete_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                log.warning("could not remove s3://%s/%s after an error: %s", self.bucket, key, exc)
        self.committed = []
