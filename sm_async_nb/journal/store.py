"""The SQLite journal: every invocation is written here before its payload is uploaded.

One connection per journal object, guarded by one lock; WAL mode so several kernels can share a
file. ``Journal(":memory:")`` is the in-memory twin for unit tests. The schema and the row codec
live in ``schema.py``.

The journal is a narrow set of named operations (as huey's storage is), each stating its
atomicity; no caller writes SQL or names columns:

* reads: :meth:`get`, :meth:`get_many`, :meth:`records`, :meth:`with_label`, :meth:`with_id_prefix`,
  :meth:`get_batch`, :meth:`batch_rows`, :meth:`batch_parts`, :meth:`pending`, :meth:`counts`,
  :meth:`completions`, :meth:`output_name_taken`, :meth:`queued`, :meth:`batch_count`, :meth:`jobs`,
  :meth:`finished_since`;
* the submission's life: :meth:`add` / :meth:`add_missing` (insert), :meth:`claim_for_submission`,
  :meth:`mark_invoking`, :meth:`mark_pending`, :meth:`mark_not_sent`, :meth:`mark_queued`,
  :meth:`restate_errors`, :meth:`recover_dead_owners`, :meth:`claim_resubmission` /
  :meth:`release_resubmission`, :meth:`attach`;
* a batch's job: :meth:`set_job`, :meth:`cancel_queued`, :meth:`inputs_removed`;
* the tracker's: :meth:`finish`;
* housekeeping: :meth:`forget`, :meth:`prune`.

Every status transition is a compare-and-set on the status it leaves, and on the owner where it
matters (a row claimed from a dead process; the steps of a submission, which only the process owning
the row may take), so two threads or processes never both apply the same transition: the verb
returns whether (or for which ids) it applied. Each verb is one transaction.

User-facing lookup rules (labels, id prefixes) are not storage: they live in ``sm_async_nb.lookup``.
``views.py`` and ``frames.py`` build the panel's and the DataFrames' SQL inside this package and run
it through the private :meth:`Journal._read`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import JournalError
from ..records import (
    FINISHED,
    UNFINISHED,
    BatchRecord,
    Finish,
    InvocationRecord,
    JobState,
    PendingRow,
    Status,
    SubmitStep,
)
from . import schema
from .filesystem import filesystem_type, is_network_filesystem
from .schema import SCHEMA_VERSION, placeholders

log = logging.getLogger(__name__)

_CHUNK = 500  # SQLite's default limit on bound parameters is 999
_ORDER = " ORDER BY submitted_at, batch_index, rowid"  # submission order, batch order within


class Claim(NamedTuple):
    """An existing row to send (again): it is claimed only if it is still as it was read."""

    inference_id: str
    expect: Status           # the status it was read in (ERROR, or SUBMITTING left by a dead process)
    expect_owner: int        # the owner_pid it was read with
    submitted_at: float | None
    input_location: str | None


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

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time):
        """
        Args:
            path: the SQLite file (its folder is created), or ``":memory:"``.
            clock: the notebook's clock, for the times the journal stamps itself (updated, finished).

        Raises:
            JournalError: the folder cannot be made or written, the file is corrupt, or it was
                written by a newer version. Nothing existing is changed.
        """
        self.path = str(path)
        self.clock = clock
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
                if self._db.in_transaction:
                    # Only an interrupt (Ctrl-C, interrupt_main) landing between an earlier BEGIN and its
                    # try leaves one open under this lock: that change was never made; drop it.
                    log.warning("rolling back a journal transaction an interrupt left open")
                    self._db.execute("ROLLBACK")
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

    # --- the private reader (this package only: views.py, frames.py) ---------------------------

    def _read(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Any]:
        """Read-only SQL under the lock. A mapping binds :named parameters; a sequence binds ``?``."""
        bound = dict(params) if isinstance(params, Mapping) else tuple(params)
        with self._lock:
            self._check_file()  # reads of a deleted file would go on answering from its old content
            try:
                return list(self._db.execute(sql, bound).fetchall())
            except sqlite3.OperationalError as exc:
                raise self._explain(exc, "read") from None

    def _select(self, where: str = "", params: Sequence[Any] = (), *, order: bool = False,
                limit: int | None = None) -> list[InvocationRecord]:
        """The one SELECT of whole invocation rows."""
        sql = schema.SELECT_INVOCATIONS + (f" WHERE {where}" if where else "") + (_ORDER if order else "")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [schema.invocation_from_row(r) for r in self._read(sql, params)]

    @staticmethod
    def _origin(where: list[str], params: list[Any], origin: str | None) -> None:
        if origin is not None:
            where.append("origin = ?")
            params.append(origin)

    # --- reads (each one statement: a consistent snapshot) -----------------------------------

    def get(self, inference_id: str) -> InvocationRecord | None:
        found = self._select("inference_id = ?", (inference_id,))
        return found[0] if found else None

    def get_many(self, inference_ids: Iterable[str]) -> dict[str, InvocationRecord]:
        """The rows of these ids that exist (one statement per 500 ids)."""
        found: dict[str, InvocationRecord] = {}
        for chunk in _chunks(list(inference_ids)):
            rows = self._select(f"inference_id IN ({placeholders(len(chunk))})", chunk)
            found.update((r.inference_id, r) for r in rows)
        return found

    def records(self, *, origin: str | None = None, statuses: Iterable[Status] | None = None
                ) -> list[InvocationRecord]:
        """The rows of ``origin`` (every origin when None), in ``statuses`` when given, oldest submission first."""
        where: list[str] = []
        params: list[Any] = []
        if statuses is not None:
            wanted = [s.value for s in statuses]
            where.append(f"status IN ({placeholders(len(wanted))})")
            params += wanted
        self._origin(where, params, origin)
        return self._select(" AND ".join(where), params, order=True)

    def with_label(self, label: str, origin: str | None = None) -> list[InvocationRecord]:
        """Every row carrying ``label`` (any submission of it), oldest submission first."""
        where, params = ["label = ?"], [label]
        self._origin(where, params, origin)
        return self._select(" AND ".join(where), params, order=True)

    def with_id_prefix(self, prefix: str, origin: str | None = None, *, limit: int = 2) -> list[InvocationRecord]:
        """At most ``limit`` rows whose inference id starts with ``prefix`` (case-sensitive, as ids are;
        LIKE would not be)."""
        where, params = ["substr(inference_id, 1, ?) = ?"], [len(prefix), prefix]
        self._origin(where, params, origin)
        return self._select(" AND ".join(where), params, limit=limit)

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        rows = self._read(schema.SELECT_BATCHES + " WHERE batch_id = ?", (batch_id,))
        return schema.batch_from_row(rows[0]) if rows else None

    def batch_rows(self, batch_id: str, origin: str | None = None) -> list[InvocationRecord]:
        """Every row of a batch, every attempt of a resubmitted slot included, oldest submission first."""
        where, params = ["batch_id = ?"], [batch_id]
        self._origin(where, params, origin)
        return self._select(" AND ".join(where), params, order=True)

    def batch_parts(self, batch_id: str) -> list[InvocationRecord]:
        """The current attempt of each slot of a batch (a resubmitted slot: its newest row), in slot order."""
        latest: dict[int, InvocationRecord] = {}
        for row in self.batch_rows(batch_id):  # oldest submission first: the newest attempt wins
            latest[row.batch_index or 0] = row
        return [latest[i] for i in sorted(latest)]

    def queued(self, batch_id: str, limit: int) -> list[InvocationRecord]:
        """At most ``limit`` QUEUED rows of a batch, in slot order (the next ones its window sends)."""
        return self._select("batch_id = ? AND status = ? ORDER BY batch_index, rowid",
                            (batch_id, Status.QUEUED.value), limit=limit)

    def batch_count(self, batch_id: str, statuses: Iterable[Status]) -> int:
        """How many rows of a batch are in ``statuses`` (every attempt counts)."""
        wanted = [s.value for s in statuses]
        [(count,)] = self._read(f"SELECT COUNT(*) FROM invocations WHERE batch_id = ? AND status IN "
                                f"({placeholders(len(wanted))})", (batch_id, *wanted))
        return int(count)

    def endpoint_count(self, origin: str, endpoint_name: str, statuses: Iterable[Status]) -> int:
        """How many rows of ``origin`` on ``endpoint_name`` are in ``statuses``."""
        wanted = [s.value for s in statuses]
        [(count,)] = self._read(f"SELECT COUNT(*) FROM invocations WHERE status IN ({placeholders(len(wanted))}) "
                                "AND origin = ? AND endpoint_name = ?", (*wanted, origin, endpoint_name))
        return int(count)

    def retry_candidates(self, batch_id: str) -> list[tuple[InvocationRecord, int]]:
        """A batch's EXPIRED and FAILED rows not sent again yet, each with how many attempts its slot has had."""
        rows = self._select("batch_id = ? AND status IN (?, ?) AND resubmitted_as IS NULL",
                            (batch_id, Status.EXPIRED.value, Status.FAILED.value))
        if not rows:
            return []
        attempts = dict(self._read("SELECT batch_index, COUNT(*) FROM invocations WHERE batch_id = ? "
                                   "GROUP BY batch_index", (batch_id,)))
        return [(r, int(attempts.get(r.batch_index, 1))) for r in rows]

    def jobs(self, states: Iterable[JobState]) -> list[BatchRecord]:
        """The batches whose job is in ``states``, oldest first."""
        wanted = [s.value for s in states]
        return [schema.batch_from_row(r) for r in self._read(
            schema.SELECT_BATCHES + f" WHERE job_state IN ({placeholders(len(wanted))}) ORDER BY created_at",
            wanted)]

    def finished_since(self, batch_id: str, after: float, limit: int) -> list[tuple[float, str]]:
        """(updated_at, inference_id) of a batch's rows that finished (any attempt) and were last written at
        or after ``after``, in that order: what ``as_completed`` has not seen yet (one indexed statement)."""
        done = [s.value for s in FINISHED]
        return [(float(at), iid) for at, iid in self._read(
            f"SELECT updated_at, inference_id FROM invocations WHERE batch_id = ? AND status IN "
            f"({placeholders(len(done))}) AND updated_at >= ? ORDER BY updated_at, rowid LIMIT {int(limit)}",
            (batch_id, *done, after))]

    def pending(self, origin: str) -> list[PendingRow]:
        """The PENDING rows of ``origin``, reading only what polling needs."""
        rows = self._read(
            "SELECT inference_id, endpoint_name, output_location, failure_location, deadline, "
            "CASE WHEN deadline IS NULL THEN request END, invoked_at, submitted_at, clock_offset, named_by_user "
            "FROM invocations WHERE status = ? AND origin = ?", (Status.PENDING.value, origin))
        found = []
        for iid, endpoint, output, failure, deadline, request, invoked_at, submitted_at, offset, named in rows:
            if deadline is None:  # rows journaled without one: work it out from the request
                deadline = InvocationRecord(iid, endpoint, request=json.loads(request),
                                            invoked_at=invoked_at, submitted_at=submitted_at).service_deadline()
            found.append(PendingRow(iid, endpoint, output, failure, deadline, invoked_at or submitted_at or 0.0,
                                    offset, bool(named)))
        return found

    def counts(self, origin: str | None = None) -> dict[Status, int]:
        """How many rows of ``origin`` (of every origin when None) are in each status."""
        where: list[str] = []
        params: list[Any] = []
        self._origin(where, params, origin)
        sql = "SELECT status, COUNT(*) FROM invocations" + (f" WHERE {where[0]}" if where else "")
        return {Status(s): n for s, n in self._read(sql + " GROUP BY status", params)}

    def completions(self, origin: str, endpoint_name: str, since: float, statuses: Iterable[Status]
                    ) -> tuple[int, float | None]:
        """How many rows of ``origin`` on ``endpoint_name`` finished in ``statuses`` at or after ``since``,
        and the earliest invoke among them (None when none)."""
        wanted = [s.value for s in statuses]
        [(count, first)] = self._read(
            f"SELECT COUNT(*), MIN(invoked_at) FROM invocations WHERE status IN ({placeholders(len(wanted))}) "
            "AND origin = ? AND endpoint_name = ? AND finished_at >= ?", (*wanted, origin, endpoint_name, since))
        return int(count or 0), first

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

    # --- inserting ---------------------------------------------------------------------------

    def add(self, records: Sequence[InvocationRecord], batch: BatchRecord | None = None) -> None:
        """Insert new rows (and their batch) in one transaction: all or nothing. Raises
        sqlite3.IntegrityError on an inference id already there, leaving nothing written."""
        now = self.clock()
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
        now = self.clock()
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

    # --- the submission's transitions (compare-and-set) --------------------------------------

    def _set(self, db: sqlite3.Connection, inference_id: str, changes: Mapping[str, Any], condition: str = "",
             params: Sequence[Any] = ()) -> bool:
        """One UPDATE of one row inside a transaction, if ``condition`` holds; whether it applied."""
        changes = {**changes, "updated_at": self.clock()}
        sets = ", ".join(f"{name} = ?" for name in changes)
        values = [schema.encode(n, v) for n, v in changes.items()]
        sql = f"UPDATE invocations SET {sets} WHERE inference_id = ?" + (f" AND {condition}" if condition else "")
        return bool(db.execute(sql, [*values, inference_id, *params]).rowcount)

    def _own_transition(self, inference_id: str, changes: Mapping[str, Any]) -> bool:
        """A step of this process's own submission: only a row still SUBMITTING by this process moves."""
        with self.transaction() as db:
            return self._set(db, inference_id, changes, "status = ? AND owner_pid = ?",
                             (Status.SUBMITTING.value, os.getpid()))

    def claim_for_submission(self, claims: Sequence[Claim]) -> set[str]:
        """Existing rows become SUBMITTING by this process (step JOURNALED, no error, not finished),
        each only if it still has the status and owner it was read with; one transaction. Returns the
        ids claimed: two threads or processes sending the same id, exactly one claims it."""
        claimed: set[str] = set()
        with self.transaction() as db:
            for claim in claims:
                changes = {"status": Status.SUBMITTING, "submit_step": SubmitStep.JOURNALED, "error": None,
                           "owner_pid": os.getpid(), "submitted_at": claim.submitted_at,
                           "input_location": claim.input_location, "finished_at": None}
                if self._set(db, claim.inference_id, changes, "status = ? AND owner_pid = ?",
                             (claim.expect.value, claim.expect_owner)):
                    claimed.add(claim.inference_id)
        return claimed

    def mark_invoking(self, inference_id: str) -> bool:
        """This process's SUBMITTING row has its input in place and its invoke is about to be sent (step
        INVOKING). False: the row is no longer this process's to send (given up, or recovered)."""
        return self._own_transition(inference_id, {"submit_step": SubmitStep.INVOKING})

    def mark_pending(self, inference_id: str, *, output_location: str | None, failure_location: str | None,
                     invoked_at: float, deadline: float, clock_offset: float | None = None) -> bool:
        """This process's SUBMITTING row → PENDING, with what the invoke answered (and S3's clock offset then)."""
        return self._own_transition(inference_id, {
            "status": Status.PENDING, "submit_step": SubmitStep.DONE, "output_location": output_location,
            "failure_location": failure_location, "invoked_at": invoked_at, "deadline": deadline,
            "clock_offset": clock_offset})

    def mark_not_sent(self, inference_id: str, error: str, *, input_written: bool) -> bool:
        """This process's SUBMITTING row → ERROR with ``error``; unless ``input_written`` the row says its
        input is nowhere."""
        changes: dict[str, Any] = {"status": Status.ERROR, "submit_step": SubmitStep.DONE, "error": error,
                                   "finished_at": self.clock()}
        if not input_written:
            changes["input_location"] = None
        return self._own_transition(inference_id, changes)

    def mark_queued(self, inference_id: str) -> bool:
        """This process's SUBMITTING row, its input in place, → QUEUED: held by flow control, invoked later
        (by whichever process claims it then)."""
        return self._own_transition(inference_id, {"status": Status.QUEUED, "submit_step": SubmitStep.DONE})

    def attach(self, record: InvocationRecord) -> InvocationRecord | None:
        """Insert a PENDING row for an invocation submitted elsewhere; returns the row already there for
        its id instead (nothing written) when there is one."""
        record.updated_at = self.clock()
        with self.transaction() as db:
            found = db.execute(schema.SELECT_INVOCATIONS + " WHERE inference_id = ?", (record.inference_id,)).fetchall()
            if found:
                return schema.invocation_from_row(found[0])
            db.execute(f"INSERT INTO invocations ({', '.join(schema.COLUMNS)}) VALUES "
                       f"({placeholders(len(schema.COLUMNS))})", schema.invocation_row(record))
        return None

    def restate_errors(self, reasons: Mapping[str, str]) -> list[str]:
        """ERROR rows get a new error text (why they were not sent again); one transaction. Rows in
        another status are left alone. Returns the ids changed."""
        with self.transaction() as db:
            return [iid for iid, why in reasons.items()
                    if self._set(db, iid, {"error": why}, "status = ?", (Status.ERROR.value,))]

    def recover_dead_owners(self, origin: str, alive: Callable[[int], bool],
                            why: Callable[[InvocationRecord], str]) -> list[str]:
        """SUBMITTING rows of ``origin`` whose owner process is not ``alive`` become ERROR with ``why(row)``,
        in one transaction, each only if still SUBMITTING by that owner. Returns the ids recovered."""
        dead = [r for r in self.records(origin=origin, statuses=[Status.SUBMITTING]) if not alive(r.owner_pid)]
        if not dead:
            return []
        now = self.clock()
        with self.transaction() as db:
            return [r.inference_id for r in dead if self._set(
                db, r.inference_id, {"status": Status.ERROR, "submit_step": SubmitStep.DONE, "error": why(r),
                                     "finished_at": now},
                "status = ? AND owner_pid = ?", (Status.SUBMITTING.value, r.owner_pid))]

    def claim_resubmission(self, inference_id: str, new_id: str) -> bool:
        """Point a FAILED/EXPIRED row at the id resubmitting it, if nothing claimed it before."""
        with self.transaction() as db:
            return self._set(db, inference_id, {"resubmitted_as": new_id}, "resubmitted_as IS NULL")

    def release_resubmission(self, inference_id: str, pointer: str) -> bool:
        """Clear a row's resubmission pointer if it still is ``pointer`` (whose row is gone)."""
        with self.transaction() as db:
            return self._set(db, inference_id, {"resubmitted_as": None}, "resubmitted_as = ?", (pointer,))

    # --- a batch's job -----------------------------------------------------------------------

    _UNSET: Any = object()

    def set_job(self, batch_id: str, *, state: JobState | None = _UNSET, owner: int | None = _UNSET,
                read_position: int | None = _UNSET, expect: Iterable[JobState | None] | None = None) -> bool:
        """Update a batch's job fields (those given), if its state is one of ``expect`` (any when None);
        whether it applied."""
        changes = {name: value for name, value in (("job_state", state), ("job_owner", owner),
                                                   ("read_position", read_position)) if value is not self._UNSET}
        if not changes:
            return False
        sets = ", ".join(f"{name} = ?" for name in changes)
        values = [schema.encode(n, v) for n, v in changes.items()]
        sql, params = f"UPDATE batches SET {sets} WHERE batch_id = ?", [*values, batch_id]
        if expect is not None:
            wanted = list(expect)
            known = [s.value for s in wanted if s is not None]
            conditions = [f"job_state IN ({placeholders(len(known))})"] if known else []
            conditions += ["job_state IS NULL"] if None in wanted else []
            sql += f" AND ({' OR '.join(conditions) or '0'})"
            params += known
        with self.transaction() as db:
            return bool(db.execute(sql, params).rowcount)

    def cancel_queued(self, batch_id: str, error: str) -> list[InvocationRecord]:
        """A batch's QUEUED rows → ERROR with ``error``, in one transaction, each only if still QUEUED;
        returns them as they were (their inputs: what the caller may clean up)."""
        rows = self._select("batch_id = ? AND status = ?", (batch_id, Status.QUEUED.value))
        now = self.clock()
        with self.transaction() as db:
            return [r for r in rows if self._set(
                db, r.inference_id, {"status": Status.ERROR, "submit_step": SubmitStep.DONE, "error": error,
                                     "finished_at": now}, "status = ?", (Status.QUEUED.value,))]

    def inputs_removed(self, inference_ids: Iterable[str]) -> None:
        """These ERROR rows' inputs were removed from S3: the rows say their input is nowhere."""
        with self.transaction() as db:
            for iid in inference_ids:
                self._set(db, iid, {"input_location": None}, "status = ?", (Status.ERROR.value,))

    # --- the tracker's transitions -----------------------------------------------------------

    def finish(self, ends: Sequence[Finish]) -> list[str]:
        """PENDING → COMPLETED / FAILED / EXPIRED with what was learned, in one transaction, each only if
        still PENDING (so a transition seen by two kernels is applied once). Returns the ids finished."""
        if any(end.status not in FINISHED or end.status is Status.ERROR for end in ends):
            raise ValueError("finish() records COMPLETED, FAILED or EXPIRED")
        with self.transaction() as db:
            return [end.inference_id for end in ends if self._set(
                db, end.inference_id, {"status": end.status, "finished_at": end.finished_at,
                                       "output_size": end.output_size, "failure_reason": end.failure_reason,
                                       "output_body": end.output_body,
                                       "output_content_type": end.output_content_type},
                "status = ?", (Status.PENDING.value,))]

    # --- housekeeping ------------------------------------------------------------------------

    def forget(self, inference_ids: Iterable[str]) -> int:
        """Delete rows, and batches left without rows, in one transaction (the journal only: S3 objects
        are never touched here). Returns how many rows went."""
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
        where = [f"status IN ({placeholders(len(finished))})", "COALESCE(finished_at, updated_at) < ?"]
        params: list[Any] = [*finished, finished_before]
        self._origin(where, params, origin)
        ids = [r[0] for r in self._read(f"SELECT inference_id FROM invocations WHERE {' AND '.join(where)}", params)]
        return self.forget(ids)
