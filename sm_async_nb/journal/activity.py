"""How a set of invocations went over time, as SQL aggregates: per interval, how many were
submitted, completed, failed and expired, and how many were pending and queued at its end; the
latency percentiles (p50, p95, p99) and a histogram. Read verbs of the journal (the SQL is built
here and run through the journal's private reader), so 100,000 rows cost a few grouped scans and
no row is decoded in Python.

Definitions (one place):

- an interval ``i`` covers ``[start + i*step, start + (i+1)*step)``;
- *submitted*: rows journaled in it (``submitted_at``); *completed* / *failed* / *expired*: rows
  that ended in it with that status (``finished_at``);
- *pending* at an interval's end: rows invoked by then whose result had not been seen by then
  (a result seen before its invoke was recorded, which two clocks allow, counts at the invoke);
- *queued* at an interval's end: rows journaled by then and neither invoked nor ended by then —
  held by a job's flow control (``QUEUED_STATUSES``), or still being uploaded; a row leaves the
  queue at its invoke (``invoked_at``), or at its end when it never was invoked (cancelled: ERROR);
- *latency*: ``finished_at - submitted_at`` of COMPLETED rows (what the panel calls latency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..records import UNFINISHED, Status
from .store import Journal

QUEUED_STATUSES = frozenset({Status.QUEUED})
ENDED = (Status.COMPLETED, Status.FAILED, Status.EXPIRED)
HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class Scope:
    """Which rows: one origin's, optionally one batch's (every attempt) or one endpoint's."""

    origin: str
    batch_id: str | None = None
    endpoint: str | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        clauses, params = ["origin = :origin"], {"origin": self.origin}
        if self.batch_id is not None:
            clauses.append("batch_id = :batch_id")
            params["batch_id"] = self.batch_id
        if self.endpoint is not None:
            clauses.append("endpoint_name = :endpoint")
            params["endpoint"] = self.endpoint
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class Timeline:
    """Per interval (``start + i*step``), the counts named in the module docstring."""

    start: float
    step: float
    submitted: list[int]
    completed: list[int]
    failed: list[int]
    expired: list[int]
    pending: list[int]
    queued: list[int]

    @property
    def intervals(self) -> int:
        return len(self.submitted)

    def columns(self) -> dict[str, list[int]]:
        return {"submitted": self.submitted, "completed": self.completed, "failed": self.failed,
                "expired": self.expired, "pending": self.pending, "queued": self.queued}


@dataclass(frozen=True)
class Latency:
    """Latency of COMPLETED rows: how many, percentiles (nearest rank) and a histogram over
    ``[low, high]`` (``high`` is p99: slower ones are counted in the last bin)."""

    count: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    low: float = 0.0
    high: float = 0.0
    histogram: list[int] = field(default_factory=list)
    slowest: float | None = None


@dataclass(frozen=True)
class Span:
    """When the scope's rows were first submitted, when anything last happened to them, and how
    many are not finished yet (their timeline runs on to now)."""

    first: float
    last: float
    unfinished: int


def span(journal: Journal, scope: Scope) -> Span | None:
    """The scope's span (one statement); None when it has no submitted row."""
    where, params = scope.where()
    waiting = ", ".join(f"'{s.value}'" for s in (*UNFINISHED, *QUEUED_STATUSES))
    [(first, last, unfinished)] = journal._read(
        f"SELECT MIN(submitted_at), MAX(MAX(COALESCE(submitted_at, 0), COALESCE(invoked_at, 0), "
        f"COALESCE(finished_at, 0))), SUM(status IN ({waiting})) FROM invocations WHERE {where} "
        "AND submitted_at IS NOT NULL", params)
    return None if first is None else Span(float(first), float(last), int(unfinished or 0))


def window(found: Span, step: float, now: float) -> tuple[float, int]:
    """(start, intervals) covering the span in steps aligned to the epoch (``1min`` intervals start
    on whole minutes), up to ``now`` while rows are unfinished."""
    start = math.floor(found.first / step) * step
    end = max(found.last, now) if found.unfinished else found.last
    return start, int((end - start) // step) + 1


def _bucket(column: str) -> str:
    return f"CASE WHEN {column} < :start THEN -1 ELSE CAST(({column} - :start) / :step AS INTEGER) END"


def timeline(journal: Journal, scope: Scope, start: float, step: float, intervals: int) -> Timeline:
    """The scope's counts per interval, from one grouped statement (a consistent snapshot): rows are
    grouped by their status and the intervals of their submission, invoke, end and result, so a
    journal of 100,000 rows is one scan and a few thousand groups.

    Raises:
        ValueError: ``step`` is not positive or ``intervals`` is negative.
    """
    if not step > 0 or intervals < 0:
        raise ValueError("timeline() needs a positive step and a number of intervals >= 0")
    where, params = scope.where()
    found = journal._read(
        f"SELECT status, {_bucket('submitted_at')}, {_bucket('finished_at')}, {_bucket('invoked_at')}, "
        f"{_bucket('MAX(invoked_at, finished_at)')}, {_bucket('COALESCE(invoked_at, finished_at)')}, COUNT(*) "
        f"FROM invocations WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6",
        {**params, "start": start, "step": step})
    # index 0 holds what happened before the first interval (only the running counts need it)
    counts = {kind: [0] * (intervals + 1) for kind in ("submitted", *(s.value for s in ENDED), "invoked", "returned",
                                                       "dequeued")}
    ended = {s.value for s in ENDED}

    def add(kind: str, bucket: int | None, n: int) -> None:
        if bucket is not None and bucket < intervals:
            counts[kind][bucket + 1] += n

    for status, submitted, finished, invoked, returned, dequeued, n in found:
        add("submitted", submitted, n)
        add(status, finished if status in ended else None, n)
        add("invoked", invoked, n)
        add("returned", returned, n)  # NULL unless both invoked and finished
        add("dequeued", dequeued, n)  # invoked, or ended without an invoke

    def running(kind: str) -> list[int]:
        total, out = 0, []
        for n in counts[kind]:
            total += n
            out.append(total)
        return out[1:]

    invoked, returned = running("invoked"), running("returned")
    return Timeline(start, step, counts["submitted"][1:], counts[Status.COMPLETED.value][1:],
                    counts[Status.FAILED.value][1:], counts[Status.EXPIRED.value][1:],
                    [max(0, a - b) for a, b in zip(invoked, returned, strict=True)],
                    [max(0, a - b) for a, b in zip(running("submitted"), running("dequeued"), strict=True)])


def latency(journal: Journal, scope: Scope, bins: int = HISTOGRAM_BINS) -> Latency:
    """Percentiles (nearest rank, from a window function) and a histogram of the scope's latencies."""
    where, params = scope.where()
    values = (f"SELECT MAX(0.0, finished_at - submitted_at) AS v FROM invocations WHERE {where} AND status = "
              f"'{Status.COMPLETED.value}' AND finished_at IS NOT NULL AND submitted_at IS NOT NULL")
    [row] = journal._read(
        f"WITH l AS ({values}), r AS (SELECT v, ROW_NUMBER() OVER (ORDER BY v) AS n, COUNT(*) OVER () AS total "
        "FROM l) SELECT MAX(total), MIN(v), MAX(v), MAX(CASE WHEN n = (total * 50 + 99) / 100 THEN v END), "
        "MAX(CASE WHEN n = (total * 95 + 99) / 100 THEN v END), MAX(CASE WHEN n = (total * 99 + 99) / 100 "
        "THEN v END) FROM r", params)
    count, low, slowest, p50, p95, p99 = row
    if not count:
        return Latency(0)
    high = max(float(p99), float(low))
    width = (high - float(low)) / bins
    histogram = [0] * bins
    found = journal._read(
        f"WITH l AS ({values}) SELECT MIN(MAX(CAST((v - :low) / :width AS INTEGER), 0), :last), COUNT(*) FROM l "
        "GROUP BY 1", {**params, "low": float(low), "width": width if width > 0 else 1.0, "last": bins - 1})
    for b, n in found:
        histogram[int(b)] += int(n)
    return Latency(int(count), float(p50), float(p95), float(p99), float(low), high, histogram, float(slowest))


__all__ = ["ENDED", "QUEUED_STATUSES", "Latency", "Scope", "Span", "Timeline", "latency", "span", "timeline", "window"]
