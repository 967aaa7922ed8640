"""The panel's data, without widgets: tracked rows in display order, filters, and the text a row
shows. Kept apart from the widgets so filtering 5,000 rows is a list comprehension over
precomputed keys, and so formatting is testable without a frontend.
"""

from __future__ import annotations

import html
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ...records import FINISHED, UNFINISHED, UNSUCCESSFUL, InvocationRecord, Status

log = logging.getLogger(__name__)

# Badge colours: background of the counts badges and text colour of the status column.
STATUS_COLOURS = {
    Status.SUBMITTING: "#6e7781",
    Status.PENDING: "#0969da",
    Status.COMPLETED: "#1a7f37",
    Status.FAILED: "#cf222e",
    Status.EXPIRED: "#9a6700",
    Status.ERROR: "#8250df",
}

# Status filter choices: (what the dropdown shows, value). Values are plain strings.
STATUS_FILTERS: tuple[tuple[str, str], ...] = (
    ("All statuses", ""), ("Unfinished", "unfinished"), ("Finished", "finished"),
    *((s.value.capitalize(), s.value) for s in Status),
)

LABEL_CHARS = 60


def esc(text: object) -> str:
    """HTML-escape anything that came from outside (labels, ids, reasons, S3 keys...)."""
    return html.escape("" if text is None else str(text), quote=True)


def short_id(inference_id: str) -> str:
    """First 8 and last 4 characters: UUIDv7 ids share their first 8 (a timestamp) for a minute,
    and batch ids like ``run-1-0007`` differ only at the end."""
    return inference_id if len(inference_id) <= 13 else f"{inference_id[:8]}…{inference_id[-4:]}"


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""  # unreachable


def human_duration(seconds: float | None) -> str:
    """Coarser as it grows, so a long-pending row's text changes (and is sent) less often."""
    if seconds is None:
        return ""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def local_time(epoch: float | None, now: float) -> str:
    """Local wall-clock time; the date only when it is not today."""
    if epoch is None:
        return ""
    when = time.localtime(epoch)
    if time.localtime(now)[:3] == when[:3]:
        return time.strftime("%H:%M:%S", when)
    return time.strftime("%Y-%m-%d %H:%M", when)


@dataclass(frozen=True)
class RowView:
    """Exactly the strings one table row shows (the table compares and sends only what differs)."""

    inference_id: str
    label: str
    label_full: str
    endpoint: str
    short_id: str
    status: Status
    submitted: str
    timing: str
    size: str

    @classmethod
    def of(cls, record: InvocationRecord, now: float) -> RowView:
        label = record.label or ""
        if record.status in FINISHED:
            timing = human_duration(record.latency)
        else:
            timing = human_duration(None if record.submitted_at is None else now - record.submitted_at)
        return cls(record.inference_id,
                   label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…", label,
                   record.endpoint_name, short_id(record.inference_id), record.status,
                   local_time(record.submitted_at, now), timing,
                   human_size(record.output_size) if record.status is Status.COMPLETED else "")


def status_badge(status: Status) -> str:
    return (f'<span style="color:{STATUS_COLOURS[status]};font-weight:600">{esc(status.value)}</span>')


def counts_badges(counts: Counter) -> str:
    """Coloured per-status badges plus the total, for the header (HTML; only our own strings)."""
    total = sum(counts.values())
    parts = [f'<span style="margin-right:8px"><b>{total}</b> tracked</span>']
    for status in Status:
        n = counts.get(status, 0)
        if n:
            parts.append(f'<span style="background:{STATUS_COLOURS[status]};color:white;border-radius:9px;'
                         f'padding:1px 8px;margin-right:4px;font-size:90%">{esc(status.value.lower())} {n}</span>')
    return "".join(parts)


class RowModel:
    """The panel's copy of the journal rows of one origin, newest submission first.

    Updated incrementally from tracker events (cheap) and reloaded whole when the journal's
    per-status counts say something else changed it (a submission, a forget, another process)."""

    def __init__(self) -> None:
        self._rows: dict[str, InvocationRecord] = {}
        self._ordered: list[tuple[str, str]] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, inference_id: object) -> bool:
        return inference_id in self._rows

    def get(self, inference_id: str) -> InvocationRecord | None:
        return self._rows.get(inference_id)

    def load(self, records: Iterable[InvocationRecord]) -> None:
        self._rows = {r.inference_id: r for r in records}
        self._ordered = None

    def apply(self, records: Iterable[InvocationRecord]) -> None:
        """Take newer versions of rows (status changes); re-sorts only when a row is new or
        was resubmitted under the same id (its submission time moved)."""
        for record in records:
            old = self._rows.get(record.inference_id)
            self._rows[record.inference_id] = record
            if old is None or old.submitted_at != record.submitted_at or old.label != record.label:
                self._ordered = None

    def remove(self, inference_ids: Iterable[str]) -> None:
        for inference_id in inference_ids:
            self._rows.pop(inference_id, None)
        self._ordered = None

    def _order(self) -> list[tuple[str, str]]:
        """(inference id, search key) pairs, newest submission first; a batch's parts stay in
        batch order. Cached until the set of rows or their submission times change."""
        if self._ordered is None:
            rows = sorted(self._rows.values(), key=lambda r: (-(r.submitted_at or 0.0), r.batch_index or 0))
            self._ordered = [(r.inference_id, "\n".join((r.label or "", r.inference_id, r.batch_id or "")).lower())
                             for r in rows]
        return self._ordered

    def filtered(self, status: str = "", endpoint: str = "", text: str = "") -> list[InvocationRecord]:
        """Rows passing every filter: status ("" all, "unfinished", "finished" or a Status value),
        exact endpoint ("" all), and a case-insensitive substring of label, id or batch id."""
        if status == "unfinished":
            wanted: frozenset[Status] | None = UNFINISHED
        elif status == "finished":
            wanted = FINISHED
        elif status:
            wanted = frozenset({Status(status)})
        else:
            wanted = None
        needle = text.strip().lower()
        rows = self._rows
        if needle:
            candidates = [rows[i] for i, key in self._order() if needle in key]
        else:
            candidates = [rows[i] for i, _ in self._order()]
        if wanted is None and not endpoint:
            return candidates
        return [r for r in candidates
                if (wanted is None or r.status in wanted) and (not endpoint or r.endpoint_name == endpoint)]

    def counts(self) -> Counter:
        return Counter(r.status for r in self._rows.values())

    def endpoints(self) -> list[str]:
        return sorted({r.endpoint_name for r in self._rows.values()})

    def batch_rows(self, batch_id: str) -> list[InvocationRecord]:
        """The current attempt of each slot of a batch (a resubmitted slot shows its newest)."""
        latest: dict[int, InvocationRecord] = {}
        for record in sorted((r for r in self._rows.values() if r.batch_id == batch_id),
                             key=lambda r: r.submitted_at or 0.0):
            latest[record.batch_index or 0] = record
        return [latest[i] for i in sorted(latest)]

    def progress(self, selected: list[InvocationRecord], shown: list[InvocationRecord]
                 ) -> tuple[int, int, int, str | None]:
        """(finished, total, unsuccessful, batch id) of the selected batch when the selection is
        inside one batch (batch id given), else of the rows shown (batch id None)."""
        batches = {r.batch_id for r in selected}
        batch_id = batches.pop() if len(batches) == 1 else None
        rows = self.batch_rows(batch_id) if batch_id is not None else shown
        return (sum(1 for r in rows if r.status in FINISHED), len(rows),
                sum(1 for r in rows if r.status in UNSUCCESSFUL), batch_id)
