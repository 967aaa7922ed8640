"""The panel's questions to the journal, answered in SQL one page at a time, so a journal of
100,000 invocations builds a panel in well under a second: filter (status set, endpoint, a
case-insensitive substring of label, id or batch id), sort by any column (stable: ties break by
newest submission, then batch order, then id), count, and read one page."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..records import InvocationRecord, Status
from .schema import placeholders
from .store import Journal

log = logging.getLogger(__name__)

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
    """What the panel shows: one origin, optionally some statuses, one endpoint, a text."""

    origin: str
    statuses: frozenset[Status] | None = None
    endpoint: str | None = None
    text: str = ""

    def where(self) -> tuple[str, dict[str, Any]]:
        clauses, params = ["origin = :origin"], {"origin": self.origin}
        if self.statuses is not None:
            names = [f":s{i}" for i in range(len(self.statuses))]
            clauses.append(f"status IN ({', '.join(names)})")
            params.update({n[1:]: s.value for n, s in zip(names, sorted(self.statuses), strict=True)})
        if self.endpoint:
            clauses.append("endpoint_name = :endpoint")
            params["endpoint"] = self.endpoint
        needle = self.text.strip().lower()
        if needle:
            clauses.append("instr(lower(COALESCE(label, '') || char(10) || inference_id || char(10) || "
                           "COALESCE(batch_id, '')), :needle) > 0")
            params["needle"] = needle
        return " AND ".join(clauses), params


def order_by(sort: str, descending: bool) -> str:
    if sort not in SORTABLE:
        raise ValueError(f"cannot sort by {sort!r}; choose one of {', '.join(SORTABLE)}")
    nulls = "NULLS LAST" if not descending else "NULLS LAST"
    return f"{SORTABLE[sort]} {'DESC' if descending else 'ASC'} {nulls}, {_TIE_BREAK}"


def page(journal: Journal, rows: RowFilter, *, sort: str = "submitted", descending: bool = True,
         offset: int = 0, limit: int = 20, now: float = 0.0) -> list[InvocationRecord]:
    where, params = rows.where()
    return journal.select(where, {**params, "now": now}, order_by=order_by(sort, descending), limit=limit,
                          offset=offset)


def count(journal: Journal, rows: RowFilter) -> int:
    where, params = rows.where()
    return int(journal.read(f"SELECT COUNT(*) FROM invocations WHERE {where}", params)[0][0])


def ids(journal: Journal, rows: RowFilter) -> list[str]:
    where, params = rows.where()
    return [r[0] for r in journal.read(f"SELECT inference_id FROM invocations WHERE {where}", params)]


def endpoints(journal: Journal, origin: str) -> list[str]:
    return [r[0] for r in journal.read("SELECT DISTINCT endpoint_name FROM invocations WHERE origin = ? "
                                       "ORDER BY endpoint_name", (origin,))]


def latest_in_batch(journal: Journal, batch_id: str) -> list[InvocationRecord]:
    """The current attempt of each slot of a batch (a resubmitted slot shows its newest)."""
    latest: dict[int, InvocationRecord] = {}
    for record in journal.query(batch_id=batch_id):  # oldest submission first
        latest[record.batch_index or 0] = record
    return [latest[i] for i in sorted(latest)]


def get_many_ordered(journal: Journal, inference_ids: Iterable[str]) -> list[InvocationRecord]:
    """Rows for these ids (those still tracked), newest submission first, batch order within."""
    found = journal.get_many(list(inference_ids)).values()
    return sorted(found, key=lambda r: (-(r.submitted_at or 0.0), r.batch_index or 0))


__all__ = ["SORTABLE", "RowFilter", "count", "endpoints", "get_many_ordered", "ids", "latest_in_batch", "order_by",
           "page", "placeholders"]
