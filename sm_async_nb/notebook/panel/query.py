"""What the panel asks the journal, answered in SQL one page at a time (``journal.views``): the
filters, the sort and the page are state here; ``read(now)`` returns what one render shows, so a
journal of 100,000 invocations costs a few indexed queries and 20 decoded rows per refresh."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from ...journal import Journal, views
from ...records import FINISHED, UNFINISHED, UNSUCCESSFUL, InvocationRecord, Status
from .rows import statuses_for


@dataclass(frozen=True)
class PageData:
    """One render's worth of data."""

    rows: list[InvocationRecord]   # the page, in display order
    page: int                      # the page shown (clamped to the pages there are)
    pages: int
    matching: int                  # rows passing the filters
    counts: dict[Status, int]      # every tracked row of this origin, per status
    finished: int                  # among the rows passing the filters
    unsuccessful: int


class PanelQuery:
    """Filters, sort and page of one panel, and the SQL that reads them."""

    def __init__(self, journal: Journal, origin: str, page_size: int):
        self.journal, self.origin, self.page_size = journal, origin, page_size
        self.status = ""        # the status filter's value (rows.STATUS_FILTERS)
        self.endpoint = ""
        self.text = ""
        self.sort = "submitted"
        self.descending = True
        self.page = 0
        self._endpoints: tuple[dict[Status, int], list[str]] | None = None

    def row_filter(self) -> views.RowFilter:
        """The filters as the journal's query object."""
        return views.RowFilter(self.origin, statuses_for(self.status), self.endpoint or None, self.text)

    def set_sort(self, key: str) -> None:
        """A header click: the same column flips its direction, another one starts descending
        for times and sizes, ascending for names."""
        if key not in views.SORTABLE:
            raise ValueError(f"cannot sort by {key!r}")
        if key == self.sort:
            self.descending = not self.descending
        else:
            self.sort, self.descending = key, key in ("submitted", "elapsed", "output")
        self.page = 0

    def read(self, now: float) -> PageData:
        """The current page and the counts one render shows (the page is clamped to the pages there are)."""
        counts = self.journal.counts(self.origin)
        rows = self.row_filter()
        trivial = rows.statuses is None and not rows.endpoint and not rows.text.strip()
        matching_counts = counts if trivial else views.status_counts(self.journal, rows)
        matching = sum(matching_counts.values())
        pages = max(1, math.ceil(matching / self.page_size))
        self.page = min(max(self.page, 0), pages - 1)
        page = views.page(self.journal, rows, sort=self.sort, descending=self.descending,
                          offset=self.page * self.page_size, limit=self.page_size, now=now) if matching else []
        return PageData(page, self.page, pages, matching, counts,
                        sum(n for s, n in matching_counts.items() if s in FINISHED),
                        sum(n for s, n in matching_counts.items() if s in UNSUCCESSFUL))

    def endpoints(self, counts: dict[Status, int]) -> list[str]:
        """Endpoint names for the filter; read again only when the per-status counts moved."""
        if self._endpoints is None or self._endpoints[0] != counts:
            self._endpoints = (counts, views.endpoints(self.journal, self.origin))
        return self._endpoints[1]

    def unfinished_endpoints(self) -> list[str]:
        """Endpoints with SUBMITTING or PENDING rows (those the endpoint strip shows)."""
        return views.endpoints(self.journal, self.origin, UNFINISHED)

    def matching_ids(self) -> list[str]:
        """Every id passing the filters ("Select all shown")."""
        return views.ids(self.journal, self.row_filter())

    def hidden(self, selected: Collection[str]) -> int:
        """How many selected rows the filters hide."""
        if not selected:
            return 0
        return len(selected) - views.count_among(self.journal, self.row_filter(), selected)

    def records(self, inference_ids: Collection[str]) -> list[InvocationRecord]:
        """These rows (the selection), newest first."""
        return views.get_many_ordered(self.journal, inference_ids)

    def existing(self, inference_ids: Collection[str]) -> set[str]:
        """Those of these ids still tracked."""
        return views.existing(self.journal, inference_ids)

    def batches(self, inference_ids: Collection[str]) -> set[str | None]:
        """The batches of these rows (None for single invocations)."""
        return views.batches_of(self.journal, inference_ids)
