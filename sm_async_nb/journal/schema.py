"""The journal's SQLite schema: its migrations, and the one codec between rows and records.

A new journal runs every migration in order; an older one runs those after its
``schema_version``. Each migration is a list of statements applied in one transaction, so a
journal is always at exactly one version. Never edit a migration that has shipped: add one.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from ..records import BatchKind, BatchRecord, InvocationRecord, JobState, Status, SubmitStep

log = logging.getLogger(__name__)

_V1 = (
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

_V2 = (
    # Listing one origin in submission order (the panel, `%sm_async list`) without a sort.
    "CREATE INDEX IF NOT EXISTS invocations_origin_time ON invocations (origin, submitted_at)",
)

_V3 = (
    # A FAILED/EXPIRED row resubmitted under a new id points at it, so resubmitting it again follows
    # the chain instead of making another invocation.
    "ALTER TABLE invocations ADD COLUMN resubmitted_as TEXT",
    # The input is the user's own S3 object (submit_s3): never deleted, whatever happens.
    "ALTER TABLE invocations ADD COLUMN user_input INTEGER NOT NULL DEFAULT 0",
    # A small output delivered inside its SNS notification (IncludeInferenceResponseIn): no S3 GET.
    "ALTER TABLE invocations ADD COLUMN output_body BLOB",
    "ALTER TABLE invocations ADD COLUMN output_content_type TEXT",
)

_V4 = (
    # S3's clock minus the notebook's when the invoke was answered (NULL: unknown): an output's
    # LastModified is compared with the invoke on S3's clock, never across the two clocks.
    "ALTER TABLE invocations ADD COLUMN clock_offset REAL",
    # The output is named by something the user chose (an inference id or a Filename), so an earlier
    # request's object may sit at its location; a name this client generated needs no time check.
    # Rows journaled before this column existed keep the time check.
    "ALTER TABLE invocations ADD COLUMN named_by_user INTEGER NOT NULL DEFAULT 1",
)

_V5 = (
    # Jobs (SPEC §16): a batch's flow-control window, its retries, what its job is doing and which
    # process drives it, how far its source was read, and how to read that source again after a restart.
    "ALTER TABLE batches ADD COLUMN max_pending TEXT",
    "ALTER TABLE batches ADD COLUMN retries INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE batches ADD COLUMN job_state TEXT",
    "ALTER TABLE batches ADD COLUMN job_owner INTEGER",
    "ALTER TABLE batches ADD COLUMN read_position INTEGER",
    "ALTER TABLE batches ADD COLUMN source_json TEXT",
    # The flow-control window counts a batch's PENDING rows, and takes its QUEUED ones in slot order.
    "CREATE INDEX IF NOT EXISTS invocations_batch_status ON invocations (batch_id, status)",
)

# (version, statements): version N's statements turn a version N-1 journal into version N.
MIGRATIONS: tuple[tuple[int, Sequence[str]], ...] = ((1, _V1), (2, _V2), (3, _V3), (4, _V4), (5, _V5))
SCHEMA_VERSION = MIGRATIONS[-1][0]

COLUMNS = tuple(f.name for f in fields(InvocationRecord))
BATCH_COLUMNS = tuple(f.name for f in fields(BatchRecord))
SELECT_INVOCATIONS = f"SELECT {', '.join(COLUMNS)} FROM invocations"
SELECT_BATCHES = f"SELECT {', '.join(BATCH_COLUMNS)} FROM batches"


def current_version(db: sqlite3.Connection) -> int:
    """0 for an empty file; otherwise the version recorded in ``meta``."""
    has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    if not has_meta:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return 0
    try:
        return int(row[0])
    except ValueError:
        raise sqlite3.DatabaseError(f"schema_version {row[0]!r} is not a number") from None


def migrate(db: sqlite3.Connection, found: int) -> list[int]:
    """Apply every migration after ``found`` (inside the caller's transaction); returns them."""
    applied = []
    for version, statements in MIGRATIONS:
        if version <= found:
            continue
        for statement in statements:
            db.execute(statement)
        applied.append(version)
    if applied:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        log.info("journal migrated from schema %s to %s", found, SCHEMA_VERSION)
    return applied


# --- the codec --------------------------------------------------------------------------------

_BOOLEANS = ("inline", "user_input", "named_by_user")


def encode(name: str, value: Any) -> Any:
    """A record field as SQLite stores it: enums by value, the request as JSON, booleans as 0/1."""
    if isinstance(value, (Status, SubmitStep, BatchKind, JobState)):
        return value.value
    if name == "request":
        return json.dumps(value, sort_keys=True)
    if name in _BOOLEANS:
        return int(value)
    return value


def invocation_row(record: InvocationRecord) -> tuple[Any, ...]:
    return tuple(encode(name, getattr(record, name)) for name in COLUMNS)


def invocation_from_row(row: Sequence[Any]) -> InvocationRecord:
    data = dict(zip(COLUMNS, row, strict=True))
    data["request"] = json.loads(data["request"])
    data["status"] = Status(data["status"])
    data["submit_step"] = SubmitStep(data["submit_step"])
    for name in _BOOLEANS:
        data[name] = bool(data[name])
    return InvocationRecord(**data)


def batch_row(batch: BatchRecord) -> tuple[Any, ...]:
    return tuple(encode(name, getattr(batch, name)) for name in BATCH_COLUMNS)


def batch_from_row(row: Sequence[Any]) -> BatchRecord:
    data = dict(zip(BATCH_COLUMNS, row, strict=True))
    data["kind"] = BatchKind(data["kind"])
    data["job_state"] = None if data["job_state"] is None else JobState(data["job_state"])
    return BatchRecord(**data)


def placeholders(count: int) -> str:
    return ", ".join("?" for _ in range(count))
