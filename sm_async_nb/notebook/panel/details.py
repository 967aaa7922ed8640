"""The details of one row as HTML: every field and timing, the log lines, and the notes shown while
the preview and the logs load (``workers.py`` fetches them, ``state.py`` decides what is shown).
Pure functions; every outside string is escaped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ...display.text import BORDER_COLOUR, MUTED_COLOUR, clip, esc, human_duration, human_size, status_badge
from ...records import UNFINISHED, InvocationRecord, Status
from .rows import MAX_REASON_CHARS

# (first bytes, content type, whole size) of a completed output: results.head's answer.
FetchHead = Callable[[InvocationRecord, int], tuple[bytes, str | None, int | None]]
RowLogs = Callable[[InvocationRecord], list[str]]
# Rows whose details read their log lines: those still running or that failed on the endpoint
# (a completed row has its output to show; an ERROR row never reached the endpoint).
LOGGED = frozenset({Status.PENDING, Status.FAILED, Status.EXPIRED})
MAX_LOG_LINES = 50
MAX_LOG_CHARS = 500


def _when(epoch: float | None) -> str:
    return "" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def note(text: str) -> str:
    return f'<div style="color:{MUTED_COLOUR}">{esc(text)}</div>'


def fields_html(record: InvocationRecord, now: float) -> str:
    """The row's fields as a two-column table (values escaped; empty ones left out)."""
    left = ""
    if record.status in UNFINISHED and record.submitted_at is not None:
        remaining = record.service_deadline() - now
        left = ("overdue: the service can no longer answer" if remaining <= 0
                else f"{human_duration(remaining)} (at {_when(record.service_deadline())})")
    elapsed = None if record.submitted_at is None else (record.finished_at or now) - record.submitted_at
    pairs = [
        ("Inference id", esc(record.inference_id)), ("Label", esc(record.label or "")),
        ("Endpoint", esc(record.endpoint_name)), ("Status", status_badge(record.status)),
        ("Batch", esc(f"{record.batch_id} #{record.batch_index}") if record.batch_id else ""),
        ("Input", f"<code>{esc(record.input_location)}</code>" if record.input_location
         else ("inline request body" if record.inline else "")),
        ("Output", f"<code>{esc(record.output_location)}</code>" if record.output_location else ""),
        ("Failure object", f"<code>{esc(record.failure_location)}</code>" if record.failure_location else ""),
        ("Content type", esc(record.content_type or "")), ("Accept", esc(record.accept or "")),
        ("Custom attributes", f"<code>{esc(record.request.get('custom_attributes'))}</code>"
         if record.request.get("custom_attributes") else ""),
        ("Submitted", esc(_when(record.submitted_at))), ("Invoked", esc(_when(record.invoked_at))),
        ("Finished", esc(_when(record.finished_at))),
        ("Latency" if record.finished_at else "Elapsed", esc(human_duration(elapsed))),
        ("Expires in", esc(left)),
        ("Output size", esc(human_size(record.output_size)) if record.status is Status.COMPLETED else ""),
    ]
    cells = "".join(f'<tr><th style="text-align:left;padding-right:12px;white-space:nowrap;color:{MUTED_COLOUR};'
                    f'font-weight:normal">{name}</th><td>{value}</td></tr>' for name, value in pairs if value)
    problem = record.failure_reason or record.error
    reason = ""
    if problem:
        reason = (f'<div style="margin-top:4px"><b>{"Failure reason" if record.failure_reason else "Error"}</b>'
                  f'<pre style="white-space:pre-wrap;margin:2px 0;max-height:14em;overflow:auto">'
                  f'{esc(clip(problem, MAX_REASON_CHARS))}</pre></div>')
    return f'<table style="border-collapse:collapse;line-height:1.4">{cells}</table>{reason}'


def logs_html(lines: list[str]) -> str:
    if not lines:
        return note("No log lines carry this inference id (yet).")
    shown = [clip(line.rstrip("\n"), MAX_LOG_CHARS) for line in lines[-MAX_LOG_LINES:]]
    more = f"last {MAX_LOG_LINES} of {len(lines)} lines" if len(lines) > MAX_LOG_LINES else f"{len(lines)} line(s)"
    return (f'<pre style="white-space:pre-wrap;margin:2px 0;max-height:14em;overflow:auto;'
            f'border-left:3px solid {BORDER_COLOUR};padding-left:6px">{esc(chr(10).join(shown))}</pre>' + note(more))


def failed_html(what: str, exc: BaseException) -> str:
    """A failed look-up, as the note shown in its place."""
    return note(f"{what} failed: {type(exc).__name__}: {clip(str(exc), 300)}")


LOADING_PREVIEW = note("Loading the preview…")
LOADING_LOGS = note("Reading the log lines…")
NO_PREVIEW = note("No preview here.")


def no_output_html(status: Status) -> str:
    return note(f"No output: the invocation is {status.value.lower()}.")
