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
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import JournalError
from ..records import FINISHED, BatchRecord, InvocationRecord, PendingRow, Status
from . import schema
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
        self.path = str(path)
        self._lock = threading.RLock()
        self._identity: tuple[int, int] | None = None
        self._db: Any
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 30000")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            with self.transaction() as db:
                self._open_schema(db)
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"The journal at {self.path} cannot be read ({exc}). It was not changed: move it aside "
                "or set %config SageMakerAsync.journal_path to start a new one.") from None
        if self.path != ":memory:":
            self._identity = self._file_identity()

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
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if not isinstance(self._db, _Closed):
                self._db.close()
                self._db = _Closed(self.path)

    # --- reading -----------------------------------------------------------------------------

    def _select(self, where: str = "", params: Sequence[Any] = (), *, order: bool = False,
                limit: int | None = None) -> list[InvocationRecord]:
        """The one SELECT of whole invocation rows."""
        sql = schema.SELECT_INVOCATIONS + (f" WHERE {where}" if where else "")
        if order:
            sql += " ORDER BY submitted_at, batch_index, rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, tuple(params)).fetchall()
        return [schema.invocation_from_row(r) for r in rows]

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
        with self._lock:
            rows = self._db.execute(
                "SELECT inference_id, endpoint_name, output_location, failure_location, deadline, "
                "CASE WHEN deadline IS NULL THEN request END, invoked_at, submitted_at FROM invocations "
                "WHERE status = ? AND origin = ?", (Status.PENDING.value, origin)).fetchall()
        found = []
        for iid, endpoint, output, failure, deadline, request, invoked_at, submitted_at in rows:
            if deadline is None:  # rows journaled without one: work it out from the request
                deadline = InvocationRecord(iid, endpoint, request=json.loads(request),
                                            invoked_at=invoked_at, submitted_at=submitted_at).service_deadline()
            found.append(PendingRow(iid, endpoint, output, failure, deadline))
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
        escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where, params = "inference_id LIKE ? ESCAPE '\\'", [escaped + "%"]
        if origin is not None:
            where += " AND origin = ?"
            params.append(origin)
        rows = self._select(where, params, limit=2)
        return rows if len(rows) == 1 else []

    def counts(self, origin: str | None = None) -> dict[Status, int]:
        sql = "SELECT status, COUNT(*) FROM invocations"
        params: tuple[Any, ...] = ()
        if origin is not None:
            sql += " WHERE origin = ?"
            params = (origin,)
        with self._lock:
            rows = self._db.execute(sql + " GROUP BY status", params).fetchall()
        return {Status(s): n for s, n in rows}

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        with self._lock:
            row = self._db.execute(schema.SELECT_BATCHES + " WHERE batch_id = ?", (batch_id,)).fetchone()
        return schema.batch_from_row(row) if row else None

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
        with self._lock:
            ids = [r[0] for r in self._db.execute(sql, params).fetchall()]
        return self.delete(ids)
