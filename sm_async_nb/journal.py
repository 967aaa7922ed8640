"""The SQLite journal: every invocation is written here before its payload is uploaded.

One connection per journal object, guarded by one lock; WAL mode so several kernels can share a
file. Status changes are compare-and-set (``expect=``) so two processes never both apply the
same transition. ``Journal(":memory:")`` is the in-memory twin for unit tests.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from .errors import JournalError
from .records import BatchRecord, InvocationRecord, PendingRow, Status, SubmitStep

SCHEMA_VERSION = 1

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS invocations (
        inference_id TEXT PRIMARY KEY,
        endpoint_name TEXT NOT NULL,
        status TEXT NOT NULL,
        submit_step TEXT NOT NULL,
        origin TEXT NOT NULL,
        label TEXT,
        batch_id TEXT,
        batch_index INTEGER,
        row_start INTEGER,
        row_count INTEGER,
        request TEXT NOT NULL,
        inline INTEGER NOT NULL,
        input_location TEXT,
        input_size INTEGER,
        input_sha256 TEXT,
        output_location TEXT,
        failure_location TEXT,
        submitted_at REAL,
        invoked_at REAL,
        finished_at REAL,
        updated_at REAL,
        output_size INTEGER,
        failure_reason TEXT,
        error TEXT,
        owner_pid INTEGER NOT NULL,
        deadline REAL
    )""",
    "CREATE INDEX IF NOT EXISTS invocations_status ON invocations (status, origin)",
    "CREATE INDEX IF NOT EXISTS invocations_batch ON invocations (batch_id, batch_index)",
    "CREATE INDEX IF NOT EXISTS invocations_label ON invocations (label)",
    """CREATE TABLE IF NOT EXISTS batches (
        batch_id TEXT PRIMARY KEY,
        endpoint_name TEXT NOT NULL,
        size INTEGER NOT NULL,
        label TEXT,
        created_at REAL,
        kind TEXT NOT NULL,
        index_json TEXT
    )""",
)

_COLUMNS = tuple(f.name for f in fields(InvocationRecord))
_BATCH_COLUMNS = tuple(f.name for f in fields(BatchRecord))


def _to_row(record: InvocationRecord) -> tuple:
    values = []
    for name in _COLUMNS:
        value = getattr(record, name)
        if name == "request":
            value = json.dumps(value, sort_keys=True)
        elif name in ("status", "submit_step"):
            value = value.value
        elif name == "inline":
            value = int(value)
        values.append(value)
    return tuple(values)


def _from_row(row: sqlite3.Row) -> InvocationRecord:
    data = dict(zip(_COLUMNS, row))
    data["request"] = json.loads(data["request"])
    data["status"] = Status(data["status"])
    data["submit_step"] = SubmitStep(data["submit_step"])
    data["inline"] = bool(data["inline"])
    return InvocationRecord(**data)


def _encode_change(name: str, value: Any) -> Any:
    if isinstance(value, (Status, SubmitStep)):
        return value.value
    if name == "request":
        return json.dumps(value, sort_keys=True)
    if name == "inline":
        return int(value)
    return value


class _Closed:
    """Stands in for the connection after close(): one clear error instead of sqlite's."""

    def __init__(self, path: str):
        self.path = path

    def __getattr__(self, name: str):
        raise JournalError(f"The journal at {self.path} was closed with its client; create a new "
                           "AsyncInferenceClient (or reload the extension) to use it again.")


class Journal:
    """Durable record of invocations and batches."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.RLock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 30000")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            with self.transaction() as db:
                for statement in _DDL:
                    db.execute(statement)
                self._check_version(db)
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"The journal at {self.path} cannot be read ({exc}). It was not changed: move it aside "
                "or set %config SageMakerAsync.journal_path to start a new one."
            ) from None

    def _check_version(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise JournalError(
                f"The journal at {self.path} was written by a newer sm_async_nb (schema {row[0]}, this "
                f"version reads {SCHEMA_VERSION}). Upgrade sm_async_nb or point journal_path elsewhere."
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction under the lock: writers in other processes wait, not fail."""
        with self._lock:
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

    # --- invocations -------------------------------------------------------------------------

    def add(self, records: Sequence[InvocationRecord], batch: BatchRecord | None = None) -> None:
        """Insert new rows (and their batch) atomically; raises sqlite3.IntegrityError on a
        duplicate inference id, leaving nothing written."""
        now = time.time()
        for record in records:
            record.updated_at = now
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self.transaction() as db:
            if batch is not None:
                db.execute(f"INSERT INTO batches ({', '.join(_BATCH_COLUMNS)}) VALUES "
                           f"({', '.join('?' for _ in _BATCH_COLUMNS)})",
                           tuple(getattr(batch, c) for c in _BATCH_COLUMNS))
            db.executemany(f"INSERT INTO invocations ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                           [_to_row(r) for r in records])

    def update(self, inference_id: str, expect: Status | Iterable[Status] | None = None, **changes: Any) -> bool:
        """Apply ``changes`` if the row's status is in ``expect`` (any status when None).
        Returns whether the row changed: the compare-and-set that keeps transitions single."""
        return bool(self.update_many([(inference_id, expect, changes)]))

    def update_many(self, updates: Sequence[tuple[str, Status | Iterable[Status] | None, dict[str, Any]]]) -> list[str]:
        """Several compare-and-set updates in one transaction; returns the ids that changed."""
        applied: list[str] = []
        now = time.time()
        with self.transaction() as db:
            for inference_id, expect, changes in updates:
                changes = {**changes, "updated_at": now}
                unknown = set(changes) - set(_COLUMNS)
                if unknown:
                    raise ValueError(f"unknown journal fields: {sorted(unknown)}")
                sets = ", ".join(f"{name} = ?" for name in changes)
                params = [_encode_change(n, v) for n, v in changes.items()] + [inference_id]
                sql = f"UPDATE invocations SET {sets} WHERE inference_id = ?"
                if expect is not None:
                    expected = [expect] if isinstance(expect, Status) else list(expect)
                    sql += f" AND status IN ({', '.join('?' for _ in expected)})"
                    params += [s.value for s in expected]
                if db.execute(sql, params).rowcount:
                    applied.append(inference_id)
        return applied

    def get(self, inference_id: str) -> InvocationRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM invocations WHERE inference_id = ?",
                                   (inference_id,)).fetchone()
        return _from_row(row) if row else None

    def get_many(self, inference_ids: Sequence[str]) -> dict[str, InvocationRecord]:
        found: dict[str, InvocationRecord] = {}
        ids = list(inference_ids)
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                rows = self._db.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM invocations WHERE inference_id IN "
                    f"({', '.join('?' for _ in chunk)})", chunk).fetchall()
                found.update((r[0], _from_row(r)) for r in rows)
        return found

    def query(self, *, statuses: Iterable[Status] | None = None, origin: str | None = None,
              batch_id: str | None = None, endpoint_name: str | None = None,
              label: str | None = None, limit: int | None = None) -> list[InvocationRecord]:
        """Rows matching every given filter, oldest submission first."""
        where, params = [], []
        if statuses is not None:
            statuses = list(statuses)
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params += [s.value for s in statuses]
        for column, value in (("origin", origin), ("batch_id", batch_id),
                              ("endpoint_name", endpoint_name), ("label", label)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM invocations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY submitted_at, batch_index, rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [_from_row(r) for r in rows]

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
                deadline = InvocationRecord(iid, endpoint, request=json.loads(request), invoked_at=invoked_at,
                                            submitted_at=submitted_at).service_deadline()
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
        sql = f"SELECT {', '.join(_COLUMNS)} FROM invocations WHERE inference_id LIKE ? ESCAPE '\\'"
        params: list[Any] = [key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"]
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin)
        with self._lock:
            rows = self._db.execute(sql + " LIMIT 2", params).fetchall()
        return [_from_row(rows[0])] if len(rows) == 1 else []

    def delete(self, inference_ids: Iterable[str]) -> int:
        ids = list(inference_ids)
        deleted = 0
        with self.transaction() as db:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                deleted += db.execute(f"DELETE FROM invocations WHERE inference_id IN "
                                      f"({', '.join('?' for _ in chunk)})", chunk).rowcount
            db.execute("DELETE FROM batches WHERE batch_id NOT IN "
                       "(SELECT DISTINCT batch_id FROM invocations WHERE batch_id IS NOT NULL)")
        return deleted

    def prune(self, *, finished_before: float) -> int:
        """Forget finished rows whose result was seen before ``finished_before`` (epoch seconds)."""
        finished = [s.value for s in Status if s.finished]
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                f"SELECT inference_id FROM invocations WHERE status IN ({', '.join('?' for _ in finished)}) "
                "AND COALESCE(finished_at, updated_at) < ?", (*finished, finished_before)).fetchall()]
        return self.delete(ids)

    def counts(self, origin: str | None = None) -> dict[Status, int]:
        sql = "SELECT status, COUNT(*) FROM invocations"
        params: tuple = ()
        if origin is not None:
            sql += " WHERE origin = ?"
            params = (origin,)
        with self._lock:
            rows = self._db.execute(sql + " GROUP BY status", params).fetchall()
        return {Status(s): n for s, n in rows}

    # --- batches -----------------------------------------------------------------------------

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_BATCH_COLUMNS)} FROM batches WHERE batch_id = ?",
                                   (batch_id,)).fetchone()
        return BatchRecord(**dict(zip(_BATCH_COLUMNS, row))) if row else None
