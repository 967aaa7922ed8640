"""The text a row shows, and the few HTML fragments the panel draws, without widgets (so
formatting is testable without a frontend). Escaping, sizes, durations and the theme's colours
are ``display.text``'s, shared with what handles show in a cell.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from ...display.text import (
    BADGE_TEXT,
    STATUS_COLOURS,
    esc,
    human_duration,
    human_size,
    short_id,
)
from ...records import FINISHED, UNFINISHED, InvocationRecord, Status

# Status filter choices: (what the dropdown shows, value). Values are plain strings.
STATUS_FILTERS: tuple[tuple[str, str], ...] = (
    ("All statuses", ""), ("Unfinished", "unfinished"), ("Finished", "finished"),
    *((s.value.capitalize(), s.value) for s in Status),
)

LABEL_CHARS = 60
MAX_REASON_CHARS = 4000  # of a failure reason shown in the details and the failure-reasons view


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
    expires: str
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
                   local_time(record.submitted_at, now), timing, expires_in(record, now),
                   human_size(record.output_size) if record.status is Status.COMPLETED else "")


def expires_in(record: InvocationRecord, now: float) -> str:
    """Time left before a pending row's TTL and invocation timeout run out ("" once finished)."""
    if record.status not in UNFINISHED or record.submitted_at is None:
        return ""
    left = record.service_deadline() - now
    return "overdue" if left <= 0 else human_duration(left)


def counts_badges(counts: Mapping[Status, int]) -> str:
    """Coloured per-status badges plus the total, for the header (HTML; only our own strings). The
    badges' shared text colour and size sit on one wrapper, so a refresh sends each style once."""
    total = sum(counts.values())
    badges = "".join(f'<span style="background:{STATUS_COLOURS[status]};border-radius:9px;padding:1px 8px;'
                     f'margin-right:4px">{esc(status.value.lower())} {counts[status]}</span>'
                     for status in Status if counts.get(status))
    wrapped = f'<span style="color:{BADGE_TEXT};font-size:90%">{badges}</span>' if badges else ""
    return f'<span style="margin-right:8px"><b>{total}</b> tracked</span>{wrapped}'


def statuses_for(choice: str) -> frozenset[Status] | None:
    """The status filter's value ("" all, "unfinished", "finished" or a Status value) as a set."""
    if choice == "unfinished":
        return UNFINISHED
    if choice == "finished":
        return FINISHED
    return frozenset({Status(choice)}) if choice else None
