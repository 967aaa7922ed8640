"""The small pieces every shown thing is made of: escaping, sizes, durations, short ids and the
theme's colours. Colours are JupyterLab theme CSS variables with the light theme's value as
fallback, so what is drawn reads in the dark theme and still renders elsewhere (VS Code, a saved
notebook)."""

from __future__ import annotations

import html

from ..records import Status

# Badge colours: background of the counts badges and text colour of the status column.
STATUS_COLOURS = {
    Status.QUEUED: "var(--jp-ui-font-color3, #8c959f)",
    Status.SUBMITTING: "var(--jp-ui-font-color2, #6e7781)",
    Status.PENDING: "var(--jp-brand-color1, #0969da)",
    Status.COMPLETED: "var(--jp-success-color1, #1a7f37)",
    Status.FAILED: "var(--jp-error-color1, #cf222e)",
    Status.EXPIRED: "var(--jp-warn-color1, #9a6700)",
    Status.ERROR: "var(--jp-error-color0, #8250df)",
}
WARN_COLOUR = "var(--jp-warn-color1, #9a6700)"
OK_COLOUR = "var(--jp-success-color1, #1a7f37)"
MUTED_COLOUR = "var(--jp-ui-font-color2, #6e7781)"
BORDER_COLOUR = "var(--jp-border-color2, #d0d7de)"
BADGE_TEXT = "var(--jp-ui-inverse-font-color0, white)"


def esc(text: object) -> str:
    """HTML-escape anything that came from outside (labels, ids, reasons, S3 keys, outputs...)."""
    return html.escape("" if text is None else str(text), quote=True)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def note(text: str) -> str:
    """One muted line of our own text (escaped)."""
    return f'<div style="color:{MUTED_COLOUR};font-size:90%">{esc(text)}</div>'


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


def status_badge(status: Status) -> str:
    return f'<span style="color:{STATUS_COLOURS[status]};font-weight:600">{esc(status.value)}</span>'
