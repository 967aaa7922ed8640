"""The panel's questions to the journal, answered in SQL one page at a time, so a journal of
100,000 invocations builds a panel in well under a second: filter (status set, endpoint, a
case-insensitive substring of label, id or batch id), sort by any column (stable: ties break by
newest submission, then batch order, then id), count, and read one page. The SQL is built here,
inside the journal package, and run through the journal's private reader."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..records import UNFINISHED, InvocationRecord, Status
from .activity import QUEUED_STATUSES
from .schema import placeholders
from .store import Journal

# Column name (as the panel calls it) -> SQL expression. "elapsed" is latency for finished rows
# and time so far for unfinished ones (":now" is bound); "expires" is the service deadline.
SORTABLE: dict[str, str] = {
    "label": "COALESCE(label, '')",
    "endpoint": "endpoint_name",
    "id": "inference_id",
    "status": "status",
    "submitted": "submitted_at",
    "elapsed": "COALESCE(finished_at, :now) - submitted_at",
    "output": "output_size",
    "expires": "deadline",
}
_TIE_BREAK = "submitted_at DESC, batch_index, inference_id"


@dataclass(frozen=True)
class RowFilter:
    """What the panel shows: one origin, optionally some statuses, one endpoint, a text, one batch."""

    origin: str
    statuses: frozenset[Status] | None = None
    endpoint: str | None = None
    text: str = ""
    batch_id: str | None = None  # only this batch's current attempts (a resubmitted part's newest row)

    def where(self) -> tuple[str, dict[str, Any]]:
        clauses, params = ["origin = :origin"], {"origin": self.origin}
        if self.statuses is not None:
            names = [f":s{i}" for i in range(len(self.statuses))]
            clauses.append(f"status IN ({', '.join(names)})")
            params.update({n[1:]: s.value for n, s in zip(names, sorted(self.statuses), strict=True)})
        if self.endpoint:
            clauses.append("endpoint_name = :endpoint")
            params["endpoint"] = self.endpoint
        if self.batch_id is not None:
            clauses.append("batch_id = :batch_id AND resubmitted_as IS NULL")
            params["batch_id"] = self.batch_id
        needle = self.text.strip().lower()
        if needle:
            clauses.append("instr(lower(COALESCE(label, '') || char(10) || inference_id || char(10) || "
                           "COALESCE(batch_id, '')), :needle) > 0")
            params["needle"] = needle
        return " AND ".join(clauses), params


def order_by(sort: str, descending: bool) -> str:
    """The ORDER BY clause: the column either way, rows without a value last, then the tie-break."""
    if sort not in SORTABLE:
        raise ValueError(f"cannot sort by {sort!r}; choose one of {', '.join(SORTABLE)}")
    return f"{SORTABLE[sort]} {'DESC' if descending else 'ASC'} NULLS LAST, {_TIE_BREAK}"


def page(journal: Journal, rows: RowFilter, *, sort: str = "submitted", descending: bool = True,
         offset: int = 0, limit: int = 20, now: float = 0.0) -> list[InvocationRecord]:
    """One page of whole rows. The sort carries only the sort key and the id; just the page's rows are
    read whole and decoded, so its cost does not grow with the size of the other rows."""
    where, params = rows.where()
    sql = (f"SELECT inference_id FROM invocations WHERE {where} ORDER BY {order_by(sort, descending)} "
           f"LIMIT {int(limit)} OFFSET {int(max(0, offset))}")
    wanted = [r[0] for r in journal._read(sql, {**params, "now": now})]
    found = journal.get_many(wanted)
    return [found[i] for i in wanted if i in found]


def count(journal: Journal, rows: RowFilter) -> int:
    where, params = rows.where()
    return int(journal._read(f"SELECT COUNT(*) FROM invocations WHERE {where}", params)[0][0])


def status_counts(journal: Journal, rows: RowFilter) -> dict[Status, int]:
    """How many rows pass the filter, per status (one query; the total is the sum)."""
    where, params = rows.where()
    found = journal._read(f"SELECT status, COUNT(*) FROM invocations WHERE {where} GROUP BY status", params)
    return {Status(s): int(n) for s, n in found}


def existing(journal: Journal, inference_ids: Iterable[str]) -> set[str]:
    """Those of ``inference_ids`` still in the journal (e.g. a selection after a forget)."""
    wanted, found = list(inference_ids), set[str]()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        found.update(r[0] for r in journal._read(
            f"SELECT inference_id FROM invocations WHERE inference_id IN ({placeholders(len(chunk))})", chunk))
    return found


def count_among(journal: Journal, rows: RowFilter, inference_ids: Iterable[str]) -> int:
    """How many of ``inference_ids`` pass the filter (the selection the filters leave visible)."""
    where, params = rows.where()
    wanted, total = list(inference_ids), 0
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        names = {f"i{n}": value for n, value in enumerate(chunk)}
        total += int(journal._read(f"SELECT COUNT(*) FROM invocations WHERE {where} AND inference_id IN "
                                  f"({', '.join(':' + n for n in names)})", {**params, **names})[0][0])
    return total


def ids(journal: Journal, rows: RowFilter) -> list[str]:
    where, params = rows.where()
    return [r[0] for r in journal._read(f"SELECT inference_id FROM invocations WHERE {where}", params)]


def endpoints(journal: Journal, origin: str, statuses: Iterable[Status] | None = None) -> list[str]:
    """Endpoint names of ``origin``'s rows (of those in ``statuses`` when given), sorted."""
    where, params = RowFilter(origin, None if statuses is None else frozenset(statuses)).where()
    return [r[0] for r in journal._read(f"SELECT DISTINCT endpoint_name FROM invocations WHERE {where} "
                                       "ORDER BY endpoint_name", params)]


def _distinct(journal: Journal, column: str, inference_ids: Iterable[str]) -> set[Any]:
    """The distinct values of ``column`` among these rows (500 ids per statement)."""
    wanted, found = list(inference_ids), set[Any]()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        found.update(r[0] for r in journal._read(
            f"SELECT DISTINCT {column} FROM invocations WHERE inference_id IN ({placeholders(len(chunk))})", chunk))
    return found


def batches_of(journal: Journal, inference_ids: Iterable[str]) -> set[str | None]:
    """The batch ids (None for a single invocation) of these rows."""
    return _distinct(journal, "batch_id", inference_ids)


def unfinished_batches(journal: Journal, origin: str) -> set[str]:
    """Batches of ``origin`` with a current attempt not finished yet (a batch leaves this set when its
    last part finishes, whichever way it finished)."""
    waiting = [s.value for s in (*UNFINISHED, *QUEUED_STATUSES)]
    return {r[0] for r in journal._read(
        f"SELECT DISTINCT batch_id FROM invocations WHERE status IN ({placeholders(len(waiting))}) AND origin = ? "
        "AND batch_id IS NOT NULL AND resubmitted_as IS NULL", [*waiting, origin])}


def expiring(journal: Journal, rows: RowFilter, now: float, within: float) -> tuple[int, float | None]:
    """How many PENDING rows passing ``rows`` reach their service deadline within ``within`` seconds
    of ``now`` (not before it), and the earliest of those deadlines (None when none)."""
    where, params = rows.where()
    [(count, first)] = journal._read(
        f"SELECT COUNT(*), MIN(deadline) FROM invocations WHERE {where} AND status = :pending AND deadline >= :now "
        "AND deadline < :until", {**params, "pending": Status.PENDING.value, "now": now, "until": now + within})
    return int(count or 0), None if first is None else float(first)


def endpoints_of(journal: Journal, inference_ids: Iterable[str]) -> set[str]:
    """The endpoints of these rows."""
    return _distinct(journal, "endpoint_name", inference_ids)


def get_many_ordered(journal: Journal, inference_ids: Iterable[str]) -> list[InvocationRecord]:
    """Rows for these ids (those still tracked), newest submission first, batch order within."""
    found = journal.get_many(list(inference_ids)).values()
    return sorted(found, key=lambda r: (-(r.submitted_at or 0.0), r.batch_index or 0))


def keys_starting(journal: Journal, origin: str, prefix: str, *, statuses: Iterable[Status] | None = None,
                  limit: int = 50) -> list[str]:
    """What a user may type to name tracked invocations (labels, then batch ids, then inference
    ids), newest first, starting with ``prefix`` (labels: in any case): for tab completion."""
    rows = RowFilter(origin, None if statuses is None else frozenset(statuses))
    where, params = rows.where()
    params = {**params, "prefix": prefix, "n": len(prefix), "limit": int(limit)}
    found: list[str] = []
    for column, match in (("label", "lower(substr(label, 1, :n)) = lower(:prefix)"),
                          ("batch_id", "substr(batch_id, 1, :n) = :prefix"),
                          ("inference_id", "substr(inference_id, 1, :n) = :prefix")):
        found += [r[0] for r in journal._read(
            f"SELECT {column} FROM invocations WHERE {where} AND {column} IS NOT NULL AND {match} "
            f"GROUP BY {column} ORDER BY MAX(submitted_at) DESC LIMIT :limit", params)]
    return list(dict.fromkeys(found))[:limit]


__all__ = ["SORTABLE", "RowFilter", "batches_of", "count", "count_among", "endpoints", "endpoints_of", "existing",
           "expiring", "get_many_ordered", "ids", "keys_starting", "order_by", "page", "placeholders",
           "status_counts", "unfinished_batches"]
