"""The text a row shows, and the few HTML fragments the panel draws, without widgets (so
formatting is testable without a frontend). Colours are JupyterLab theme CSS variables (with the
light theme's value as fallback elsewhere), so the panel reads well in the dark theme too.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ...records import FINISHED, UNFINISHED, InvocationRecord, Status

# Badge colours: background of the counts badges and text colour of the status column, as theme
# variables (JupyterLab's light and dark themes define each; the fallback is for other frontends).
STATUS_COLOURS = {
    Status.SUBMITTING: "var(--jp-ui-font-color2, #6e7781)",
    Status.PENDING: "var(--jp-brand-color1, #0969da)",
    Status.COMPLETED: "var(--jp-success-color1, #1a7f37)",
    Status.FAILED: "var(--jp-error-color1, #cf222e)",
    Status.EXPIRED: "var(--jp-warn-color1, #9a6700)",
    Status.ERROR: "var(--jp-error-color0, #8250df)",
}
WARN_COLOUR = "var(--jp-warn-color1, #9a6700)"
MUTED_COLOUR = "var(--jp-ui-font-color2, #6e7781)"
BORDER_COLOUR = "var(--jp-border-color2, #d0d7de)"
BADGE_TEXT = "var(--jp-ui-inverse-font-color0, white)"

# Status filter choices: (what the dropdown shows, value). Values are plain strings.
STATUS_FILTERS: tuple[tuple[str, str], ...] = (
    ("All statuses", ""), ("Unfinished", "unfinished"), ("Finished", "finished"),
    *((s.value.capitalize(), s.value) for s in Status),
)

LABEL_CHARS = 60
MAX_REASON_CHARS = 4000  # of a failure reason shown in the details and the failure-reasons view


def esc(text: object) -> str:
    """HTML-escape anything that came from outside (labels, ids, reasons, S3 keys...)."""
    return html.escape("" if text is None else str(text), quote=True)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


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


def status_badge(status: Status) -> str:
    return (f'<span style="color:{STATUS_COLOURS[status]};font-weight:600">{esc(status.value)}</span>')


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
