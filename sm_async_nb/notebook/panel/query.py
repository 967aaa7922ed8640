"""What the panel asks the journal, answered in SQL one page at a time (``journal.views``).

``Query`` is the value the user sets (filters, sort, page); ``JournalReader`` answers it and the
few other questions the panel's state asks (counts, endpoints, the selection's rows), so a journal
of 100,000 invocations costs a few indexed queries and 20 decoded rows per snapshot. Every journal
read of the panel goes through here.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace

from ...journal import Journal, views
from ...records import FINISHED, UNFINISHED, UNSUCCESSFUL, BatchRecord, InvocationRecord, Status
from .rows import statuses_for

# Sort keys that start descending (times and sizes); the others (names) start ascending.
DESCENDING_FIRST = frozenset({"submitted", "elapsed", "output"})


@dataclass(frozen=True)
class Query:
    """Filters, sort and page of one panel."""

    status: str = ""          # the status filter's value (rows.STATUS_FILTERS)
    endpoint: str = ""
    text: str = ""
    sort: str = "submitted"
    descending: bool = True
    page: int = 0

    def row_filter(self, origin: str) -> views.RowFilter:
        """The filters as the journal's query object."""
        return views.RowFilter(origin, statuses_for(self.status), self.endpoint or None, self.text)

    def sorted_by(self, key: str) -> Query:
        """A header click: the same column flips its direction, another one starts descending
        for times and sizes, ascending for names; either way back to the first page.

        Raises:
            ValueError: ``key`` is not a sortable column.
        """
        if key not in views.SORTABLE:
            raise ValueError(f"cannot sort by {key!r}")
        if key == self.sort:
            return replace(self, descending=not self.descending, page=0)
        return replace(self, sort=key, descending=key in DESCENDING_FIRST, page=0)


@dataclass(frozen=True)
class PageData:
    """One snapshot's worth of rows and counts."""

    rows: list[InvocationRecord]   # the page, in display order
    page: int                      # the page shown (clamped to the pages there are)
    pages: int
    matching: int                  # rows passing the filters
    counts: dict[Status, int]      # every tracked row of this origin, per status
    finished: int                  # among the rows passing the filters
    unsuccessful: int


def _finished(counts: dict[Status, int]) -> tuple[int, int]:
    return (sum(n for s, n in counts.items() if s in FINISHED),
            sum(n for s, n in counts.items() if s in UNSUCCESSFUL))


class JournalReader:
    """The panel's reads of one origin's rows; the endpoint list is kept until the counts move."""

    def __init__(self, journal: Journal, origin: str, page_size: int):
        self.journal, self.origin, self.page_size = journal, origin, page_size
        self._endpoints: tuple[dict[Status, int], list[str]] | None = None

    def read(self, query: Query, now: float) -> PageData:
        """The query's page (clamped to the pages there are) and the counts a snapshot shows."""
        counts = self.journal.counts(self.origin)
        rows = query.row_filter(self.origin)
        trivial = rows.statuses is None and not rows.endpoint and not rows.text.strip()
        matching_counts = counts if trivial else views.status_counts(self.journal, rows)
        matching = sum(matching_counts.values())
        pages = max(1, math.ceil(matching / self.page_size))
        page = min(max(query.page, 0), pages - 1)
        found = views.page(self.journal, rows, sort=query.sort, descending=query.descending,
                           offset=page * self.page_size, limit=self.page_size, now=now) if matching else []
        return PageData(found, page, pages, matching, counts, *_finished(matching_counts))

    def endpoints(self, counts: dict[Status, int]) -> list[str]:
        """Endpoint names for the filter; read again only when the per-status counts moved."""
        if self._endpoints is None or self._endpoints[0] != counts:
            self._endpoints = (counts, views.endpoints(self.journal, self.origin))
        return self._endpoints[1]

    def unfinished_endpoints(self) -> list[str]:
        """Endpoints with SUBMITTING or PENDING rows (those the endpoint strip shows)."""
        return views.endpoints(self.journal, self.origin, UNFINISHED)

    def matching_ids(self, query: Query) -> list[str]:
        """Every id passing the filters ("Select all shown")."""
        return views.ids(self.journal, query.row_filter(self.origin))

    def hidden(self, query: Query, selected: Collection[str]) -> int:
        """How many selected rows the filters hide."""
        if not selected:
            return 0
        return len(selected) - views.count_among(self.journal, query.row_filter(self.origin), selected)

    def get(self, inference_id: str) -> InvocationRecord | None:
        return self.journal.get(inference_id)

    def records(self, inference_ids: Collection[str]) -> list[InvocationRecord]:
        """These rows (the selection), newest first."""
        return views.get_many_ordered(self.journal, inference_ids)

    def existing(self, inference_ids: Collection[str]) -> set[str]:
        """Those of these ids still tracked."""
        return views.existing(self.journal, inference_ids)

    def batches(self, inference_ids: Collection[str]) -> set[str | None]:
        """The batches of these rows (None for single invocations)."""
        return views.batches_of(self.journal, inference_ids)

    def batch_counts(self, batch_id: str) -> dict[Status, int]:
        """A batch's current attempts, per status."""
        return views.status_counts(self.journal, views.RowFilter(self.origin, batch_id=batch_id))

    def batch_progress(self, batch_id: str) -> tuple[int, int, int]:
        """(finished, total, unsuccessful) of a batch's current attempts."""
        counts = self.batch_counts(batch_id)
        finished, unsuccessful = _finished(counts)
        return finished, sum(counts.values()), unsuccessful

    def unfinished_batches(self) -> frozenset[str]:
        """Batches with a part not finished yet."""
        return frozenset(views.unfinished_batches(self.journal, self.origin))

    def expiring(self, now: float, within: float) -> tuple[int, float | None]:
        """Pending rows whose deadline falls within ``within`` s of ``now``: how many, the first deadline."""
        return views.expiring(self.journal, views.RowFilter(self.origin), now, within)

    def endpoints_of(self, inference_ids: Collection[str]) -> set[str]:
        return views.endpoints_of(self.journal, inference_ids)

    def batch(self, batch_id: str) -> BatchRecord | None:
        return self.journal.get_batch(batch_id)
