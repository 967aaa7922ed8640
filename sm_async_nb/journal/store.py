"""The SQLite journal: every invocation is written here before its payload is uploaded.

One connection per journal object, guarded by one lock; WAL mode so several kernels can share a
file. Status changes are compare-and-set (``expect=``) so two processes never both apply the
same transition. ``Journal(":memory:")`` is the in-memory twin for unit tests. The schema and
the row codec live in ``schema.py``; every SELECT goes through :meth:`Journal._select`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import JournalError
from ..records import FINISHED, UNFINISHED, BatchRecord, InvocationRecord, PendingRow, Status
from . import schema
from .filesystem import filesystem_type, is_network_filesystem
from .schema import SCHEMA_VERSION, placeholders

log = logging.getLogger(__name__)

Expect = Status | Iterable[Status] | None
_CHUNK = 500  # SQLite's default limit on bound parameters is 999


class _Closed:
    """Stands in for the connection after close(): one clear error instead of sqlite's."""

    def __init__(self, path: str):
        self.path = path

    def __getattr__(self, name: str) -> Any:
        raise JournalError(f"The journal at {self.path} was closed with its client; create a new "
                           "AsyncInferenceClient (or reload the extension) to use it again.")


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


class Journal:
    """Durable record of invocations and batches."""

    def __init__(self, path: str | os.PathLike[str]):
        """
        Args:
            path: the SQLite file (its folder is created), or ``":memory:"``.

        Raises:
            JournalError: the folder cannot be made or written, the file is corrupt, or it was
                written by a newer version. Nothing existing is changed.
        """
        self.path = str(path)
        self._lock = threading.RLock()
        self._identity: tuple[int, int] | None = None
        self.notice: str | None = None  # one line worth telling the user (network filesystem)
        self._db: Any
        if self.path != ":memory:":
            self._make_folder()
        try:
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 30000")
            if self.path != ":memory:":
                self._choose_journal_mode()
            with self.transaction() as db:
                self._open_schema(db)
        except JournalError:
            raise
        except sqlite3.OperationalError as exc:
            raise self._explain(exc, "opened") from None
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"The journal at {self.path} cannot be read ({exc}). It was not changed: move it aside "
                "or set %config SageMakerAsync.journal_path to start a new one.") from None
        if self.path != ":memory:":
            self._identity = self._file_identity()

    def _make_folder(self) -> None:
        folder = Path(self.path).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise JournalError(f"Cannot put the journal at {self.path}: a part of {folder} is a file, not a "
                               "folder. Set %config SageMakerAsync.journal_path to a path in a folder.") from None
        except OSError as exc:
            raise JournalError(f"Cannot create the journal's folder {folder} ({exc.strerror or exc}): set "
                               "%config SageMakerAsync.journal_path to a writable place.") from None

    def _choose_journal_mode(self) -> None:
        """WAL lets kernels share the file, but needs shared memory that network filesystems lack."""
        if is_network_filesystem(Path(self.path).parent):
            self._db.execute("PRAGMA journal_mode = DELETE")
            self.notice = (f"The journal {self.path} is on a network filesystem "
                           f"({filesystem_type(Path(self.path).parent)}): using SQLite's rollback journal "
                           "instead of WAL (safe, a little slower to write).")
            log.warning("%s", self.notice)
        else:
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")

    def _explain(self, exc: sqlite3.Error, doing: str = "written") -> JournalError:
        """An SQLite failure as one line saying what to do; the journal itself stays consistent
        (each change is one transaction, rolled back when it fails)."""
        text = str(exc).lower()
        if "full" in text:
            return JournalError(f"The disk holding the journal {self.path} is full: free some space and try "
                                "again (nothing journaled before was lost; this change was not made).")
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return JournalError(f"The journal {self.path} cannot be {doing} ({exc}): its folder is read-only or "
                                "missing; set %config SageMakerAsync.journal_path to a writable place.")
        if "locked" in text or "busy" in text:
            return JournalError(f"The journal {self.path} stayed locked by another process for 30 s ({exc}); "
                                "try again when it is done.")
        return JournalError(f"The journal {self.path} could not be {doing} ({exc}); this change was not made.")

    def _open_schema(self, db: sqlite3.Connection) -> None:
        found = schema.current_version(db)
        if found > SCHEMA_VERSION:
            raise JournalError(
                f"The journal at {self.path} was written by a newer sm_async_nb (schema {found}, this "
                f"version reads {SCHEMA_VERSION}). Upgrade sm_async_nb or point journal_path elsewhere.")
        schema.migrate(db, found)

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_dev, stat.st_ino

    def _check_file(self) -> None:
        """A journal file deleted or replaced under us would silently swallow every later write."""
        if self._identity is not None and self._file_identity() != self._identity:
            raise JournalError(f"The journal file {self.path} was deleted or replaced while this client was "
                               "using it; nothing more was written to it. Create a new client (or reload the "
                               "extension) to start a journal there again.")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction under the lock: writers in other processes wait, not fail."""
        with self._lock:
            self._check_file()
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._explain(exc) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite rolled back by itself (e.g. SQLITE_FULL)
                if isinstance(exc, sqlite3.OperationalError):
                    raise self._explain(exc) from None
                raise

    def close(self) -> None:
        with self._lock:
            if not isinstance(self._db, _Closed):
                self._db.close()
                self._db = _Closed(self.path)

    # --- reading -----------------------------------------------------------------------------

    def _select(self, where: str = "", params: Sequence[Any] | Mapping[str, Any] = (), *, order: bool = False,
                limit: int | None = None, order_by: str | None = None, offset: int = 0) -> list[InvocationRecord]:
        """The one SELECT of whole invocation rows (``order_by``: an ORDER BY clause from views.py)."""
        sql = schema.SELECT_INVOCATIONS + (f" WHERE {where}" if where else "")
        if order_by:
            sql += f" ORDER BY {order_by}"
        elif order:
            sql += " ORDER BY submitted_at, batch_index, rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = self._read(sql, params)
        return [schema.invocation_from_row(r) for r in rows]

    select = _select  # for journal/views.py, which builds the panel's queries

    def _read(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Any]:
        # A mapping binds :named parameters (views.py); a sequence binds ? placeholders.
        bound = dict(params) if isinstance(params, Mapping) else tuple(params)
        with self._lock:
            try:
                return list(self._db.execute(sql, bound).fetchall())
            except sqlite3.OperationalError as exc:
                raise self._explain(exc, "read") from None

    read = _read  # read-only SQL for journal/views.py and frames.py

    def get(self, inference_id: str) -> InvocationRecord | None:
        found = self._select("inference_id = ?", (inference_id,))
        return found[0] if found else None

    def get_many(self, inference_ids: Iterable[str]) -> dict[str, InvocationRecord]:
        found: dict[str, InvocationRecord] = {}
        for chunk in _chunks(list(inference_ids)):
            rows = self._select(f"inference_id IN ({placeholders(len(chunk))})", chunk)
            found.update((r.inference_id, r) for r in rows)
        return found

    def query(self, *, statuses: Iterable[Status] | None = None, origin: str | None = None,
              batch_id: str | None = None, endpoint_name: str | None = None,
              label: str | None = None, limit: int | None = None) -> list[InvocationRecord]:
        """Rows matching every given filter, oldest submission first."""
        where: list[str] = []
        params: list[Any] = []
        if statuses is not None:
            wanted = [s.value for s in statuses]
            where.append(f"status IN ({placeholders(len(wanted))})")
            params += wanted
        for column, value in (("origin", origin), ("batch_id", batch_id),
                              ("endpoint_name", endpoint_name), ("label", label)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        return self._select(" AND ".join(where), params, order=True, limit=limit)

    def pending(self, origin: str) -> list[PendingRow]:
        """The PENDING rows of ``origin``, reading only what polling needs."""
        rows = self._read(
            "SELECT inference_id, endpoint_name, output_location, failure_location, deadline, "
            "CASE WHEN deadline IS NULL THEN request END, invoked_at, submitted_at FROM invocations "
            "WHERE status = ? AND origin = ?", (Status.PENDING.value, origin))
        found = []
        for iid, endpoint, output, failure, deadline, request, invoked_at, submitted_at in rows:
            if deadline is None:  # rows journaled without one: work it out from the request
                deadline = InvocationRecord(iid, endpoint, request=json.loads(request),
                                            invoked_at=invoked_at, submitted_at=submitted_at).service_deadline()
            found.append(PendingRow(iid, endpoint, output, failure, deadline, invoked_at or submitted_at or 0.0))
        return found

    def find(self, key: str, origin: str | None = None) -> list[InvocationRecord]:
        """Resolve what a user typed: a full inference id, a label, a batch id or a unique id
        prefix (within ``origin`` when given). A label names its latest submission, since
        re-running a cell reuses its label. Returns that submission's rows in order."""
        record = self.get(key)
        if record is not None and origin in (None, record.origin):
            return [record]
        labelled = self.query(label=key, origin=origin)
        if labelled:
            submissions: dict[str, list[InvocationRecord]] = {}
            for row in labelled:
                submissions.setdefault(row.batch_id or row.inference_id, []).append(row)
            return max(submissions.values(), key=lambda rows: max(r.submitted_at or 0.0 for r in rows))
        in_batch = self.query(batch_id=key, origin=origin)
        if in_batch:
            return in_batch
        # A prefix is case-sensitive, like the ids themselves (LIKE would not be).
        where, params = "substr(inference_id, 1, ?) = ?", [len(key), key]
        if origin is not None:
            where += " AND origin = ?"
            params.append(origin)
        rows = self._select(where, params, limit=2)
        return rows if len(rows) == 1 else []

    def output_name_taken(self, origin: str, endpoint_name: str, filename: str, extension: str | None, *,
                          exclude: str) -> InvocationRecord | None:
        """A live (unfinished or completed) invocation whose output is named by the same Filename
        (and S3OutputPathExtension) on the same endpoint; failed ones wrote no output."""
        live = [s.value for s in (*UNFINISHED, Status.COMPLETED)]
        rows = self._select(
            f"origin = ? AND endpoint_name = ? AND status IN ({placeholders(len(live))}) AND inference_id != ? "
            "AND json_extract(request, '$.filename') = ? "
            "AND COALESCE(json_extract(request, '$.s3_output_path_extension'), '') = ?",
            [origin, endpoint_name, *live, exclude, filename, extension or ""], limit=1)
        return rows[0] if rows else None

    def columns(self, names: Sequence[str], request_fields: Sequence[str] = (), *,
                origin: str | None = None) -> dict[str, list[Any]]:
        """Whole columns (and request fields, extracted by SQLite's JSON functions) in submission
        order, without building a record per row: what a 100,000-row DataFrame needs."""
        unknown = set(names) - set(schema.COLUMNS)
        if unknown:
            raise ValueError(f"unknown journal fields: {sorted(unknown)}")
        selected = [*names, *(f"json_extract(request, '$.{field}')" for field in request_fields)]
        sql = f"SELECT {', '.join(selected)} FROM invocations"
        params: tuple[Any, ...] = ()
        if origin is not None:
            sql += " WHERE origin = ?"
            params = (origin,)
        rows = self._read(sql + " ORDER BY submitted_at, batch_index, rowid", params)
        values = list(zip(*rows, strict=True)) if rows else [() for _ in selected]
        return {name: list(column) for name, column in zip([*names, *request_fields], values, strict=True)}

    def counts(self, origin: str | None = None) -> dict[Status, int]:
        sql = "SELECT status, COUNT(*) FROM invocations"
        params: tuple[Any, ...] = ()
        if origin is not None:
            sql += " WHERE origin = ?"
            params = (origin,)
        rows = self._read(sql + " GROUP BY status", params)
        return {Status(s): n for s, n in rows}

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        rows = self._read(schema.SELECT_BATCHES + " WHERE batch_id = ?", (batch_id,))
        return schema.batch_from_row(rows[0]) if rows else None

    # --- writing -----------------------------------------------------------------------------

    def add(self, records: Sequence[InvocationRecord], batch: BatchRecord | None = None) -> None:
        """Insert new rows (and their batch) atomically; raises sqlite3.IntegrityError on a
        duplicate inference id, leaving nothing written."""
        now = time.time()
        for record in records:
            record.updated_at = now
        with self.transaction() as db:
            if batch is not None:
                db.execute(f"INSERT INTO batches ({', '.join(schema.BATCH_COLUMNS)}) VALUES "
                           f"({placeholders(len(schema.BATCH_COLUMNS))})", schema.batch_row(batch))
            db.executemany(f"INSERT INTO invocations ({', '.join(schema.COLUMNS)}) VALUES "
                           f"({placeholders(len(schema.COLUMNS))})", [schema.invocation_row(r) for r in records])

    def add_missing(self, records: Sequence[InvocationRecord], batch: BatchRecord | None = None) -> set[str]:
        """Insert the rows (and the batch) whose id is not in the journal yet, in one transaction;
        returns the ids inserted. Two threads or processes adding the same id: exactly one wins."""
        now = time.time()
        for record in records:
            record.updated_at = now
        inserted: set[str] = set()
        with self.transaction() as db:
            if batch is not None:
                db.execute(f"INSERT OR IGNORE INTO batches ({', '.join(schema.BATCH_COLUMNS)}) VALUES "
                           f"({placeholders(len(schema.BATCH_COLUMNS))})", schema.batch_row(batch))
            sql = (f"INSERT OR IGNORE INTO invocations ({', '.join(schema.COLUMNS)}) VALUES "
                   f"({placeholders(len(schema.COLUMNS))})")
            for record in records:
                if db.execute(sql, schema.invocation_row(record)).rowcount:
                    inserted.add(record.inference_id)
        return inserted

    def update(self, inference_id: str, expect: Expect = None, **changes: Any) -> bool:
        """Apply ``changes`` if the row's status is in ``expect`` (any status when None).
        Returns whether the row changed: the compare-and-set that keeps transitions single."""
        return bool(self.update_many([(inference_id, expect, changes)]))

    def update_many(self, updates: Sequence[tuple[str, Expect, dict[str, Any]]]) -> list[str]:
        """Several compare-and-set updates in one transaction; returns the ids that changed."""
        applied: list[str] = []
        now = time.time()
        with self.transaction() as db:
            for inference_id, expect, changes in updates:
                changes = {**changes, "updated_at": now}
                unknown = set(changes) - set(schema.COLUMNS)
                if unknown:
                    raise ValueError(f"unknown journal fields: {sorted(unknown)}")
                sets = ", ".join(f"{name} = ?" for name in changes)
                params = [schema.encode(n, v) for n, v in changes.items()] + [inference_id]
                sql = f"UPDATE invocations SET {sets} WHERE inference_id = ?"
                if expect is not None:
                    expected = [expect] if isinstance(expect, Status) else list(expect)
                    sql += f" AND status IN ({placeholders(len(expected))})"
                    params += [s.value for s in expected]
                if db.execute(sql, params).rowcount:
                    applied.append(inference_id)
        return applied

    def claim_resubmission(self, inference_id: str, new_id: str | None, *, expect_current: str | None = None) -> bool:
        """Point a FAILED/EXPIRED row at the id resubmitting it, if nothing else claimed it first
        (``expect_current``: the pointer it must have now, None for unclaimed)."""
        sql = "UPDATE invocations SET resubmitted_as = ?, updated_at = ? WHERE inference_id = ? AND "
        sql += "resubmitted_as IS NULL" if expect_current is None else "resubmitted_as = ?"
        params: list[Any] = [new_id, time.time(), inference_id]
        if expect_current is not None:
            params.append(expect_current)
        with self.transaction() as db:
            return bool(db.execute(sql, params).rowcount)

    def delete(self, inference_ids: Iterable[str]) -> int:
        """Forget rows (the journal only: S3 objects are never touched here)."""
        ids = list(inference_ids)
        deleted = 0
        with self.transaction() as db:
            for chunk in _chunks(ids):
                deleted += db.execute(f"DELETE FROM invocations WHERE inference_id IN "
                                      f"({placeholders(len(chunk))})", tuple(chunk)).rowcount
            db.execute("DELETE FROM batches WHERE batch_id NOT IN "
                       "(SELECT DISTINCT batch_id FROM invocations WHERE batch_id IS NOT NULL)")
        return deleted

    def prune(self, *, finished_before: float, origin: str | None = None) -> int:
        """Forget finished rows whose result was seen before ``finished_before`` (epoch seconds)."""
        finished = [s.value for s in FINISHED]
        sql = (f"SELECT inference_id FROM invocations WHERE status IN ({placeholders(len(finished))}) "
               "AND COALESCE(finished_at, updated_at) < ?")
        params: list[Any] = [*finished, finished_before]
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin)
        ids = [r[0] for r in self._read(sql, params)]
        return self.delete(ids)
