"""The details of one row: every field and timing at once, then a preview of its output and its
log lines, each fetched in the background (``CachedLoader``), never on the kernel's main thread.

Only trait assignments happen here after construction, from whichever thread has an answer; an
answer for a row that is no longer shown is dropped. Every outside string is escaped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

import ipywidgets as W

from ...records import UNFINISHED, InvocationRecord, Status
from .loader import CachedLoader
from .preview import FETCH_BYTES, preview_html
from .rows import BORDER_COLOUR, MUTED_COLOUR, esc, human_duration, human_size, status_badge

log = logging.getLogger(__name__)

# (first bytes, content type, whole size) of a completed output: results.head's answer.
FetchHead = Callable[[InvocationRecord, int], tuple[bytes, str | None, int | None]]
RowLogs = Callable[[InvocationRecord], list[str]]
# Rows whose details read their log lines: those still running or that failed on the endpoint
# (a completed row has its output to show; an ERROR row never reached the endpoint).
LOGGED = frozenset({Status.PENDING, Status.FAILED, Status.EXPIRED})
MAX_REASON_CHARS = 4000
MAX_LOG_LINES = 50
MAX_LOG_CHARS = 500


def _when(epoch: float | None) -> str:
    return "" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _note(text: str) -> str:
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
                  f'{esc(_clip(problem, MAX_REASON_CHARS))}</pre></div>')
    return f'<table style="border-collapse:collapse;line-height:1.4">{cells}</table>{reason}'


def logs_html(lines: list[str]) -> str:
    if not lines:
        return _note("No log lines carry this inference id (yet).")
    shown = [_clip(line.rstrip("\n"), MAX_LOG_CHARS) for line in lines[-MAX_LOG_LINES:]]
    more = f"last {MAX_LOG_LINES} of {len(lines)} lines" if len(lines) > MAX_LOG_LINES else f"{len(lines)} line(s)"
    return (f'<pre style="white-space:pre-wrap;margin:2px 0;max-height:14em;overflow:auto;'
            f'border-left:3px solid {BORDER_COLOUR};padding-left:6px">{esc(chr(10).join(shown))}</pre>' + _note(more))


def _failed(what: str) -> Callable[[BaseException], str]:
    def say(exc: BaseException) -> str:
        return _note(f"{what} failed: {type(exc).__name__}: {_clip(str(exc), 300)}")
    return say


class DetailsView:
    """One row's details; ``show(record, now)`` fills it, ``update`` keeps it current."""

    def __init__(self, fetch_head: FetchHead | None, row_logs: RowLogs | None, *, csv_header: bool = False):
        self._fetch_head, self._row_logs, self._csv_header = fetch_head, row_logs, csv_header
        self.fields = W.HTML()
        self.preview_title = W.HTML("<b>Output preview</b>")
        self.preview = W.HTML(_dom_classes=("sm-async-preview",))
        self.logs_title = W.HTML("<b>Log lines</b>")
        self.logs = W.HTML(_dom_classes=("sm-async-logs",))
        self.box = W.VBox([self.fields, self.preview_title, self.preview], _dom_classes=("sm-async-row-details",))
        self.record: InvocationRecord | None = None
        self._keys: tuple[Hashable, Hashable] = (None, None)
        self._lock = threading.Lock()
        self.previews: CachedLoader[str] = CachedLoader("preview", self._preview_ready, _failed("Preview"))
        self.log_lines: CachedLoader[str] = CachedLoader("logs", self._logs_ready, _failed("Reading the logs"))

    def widgets(self) -> list[W.Widget]:
        return [self.box, self.fields, self.preview_title, self.preview, self.logs_title, self.logs]

    @property
    def inference_id(self) -> str | None:
        return None if self.record is None else self.record.inference_id

    def show(self, record: InvocationRecord, now: float) -> None:
        """Fill in ``record``; the preview and logs follow from the background when not cached."""
        with self._lock:
            self.record = record
            preview_key = (record.inference_id, record.output_location, record.finished_at)
            logs_key = (record.inference_id, record.status, record.finished_at)
            changed = self._keys != (preview_key, logs_key)
            self._keys = (preview_key, logs_key)
        self.fields.value = fields_html(record, now)
        if not changed:
            return
        self.previews.want(preview_key)
        self.log_lines.want(logs_key)
        self._start_preview(record, preview_key)
        with_logs = self._row_logs is not None and record.status in LOGGED
        self.box.children = (self.fields, self.preview_title, self.preview,
                             *((self.logs_title, self.logs) if with_logs else ()))
        if with_logs and self._row_logs is not None:
            row_logs = self._row_logs
            self.logs.value = _note("Reading the log lines…")  # before the worker can answer
            found = self.log_lines.request(logs_key, lambda: logs_html(row_logs(record)))
            if found is not None:
                self.logs.value = found

    def _start_preview(self, record: InvocationRecord, key: Hashable) -> None:
        if record.status is not Status.COMPLETED:
            self.preview.value = _note(f"No output: the invocation is {record.status.value.lower()}.")
            return
        if self._fetch_head is None:
            self.preview.value = _note("No preview here.")
            return
        fetch, csv_header = self._fetch_head, self._csv_header

        def work() -> str:
            body, content_type, total = fetch(record, FETCH_BYTES)
            return preview_html(body, content_type, total, csv_header=csv_header)

        self.preview.value = _note("Loading the preview…")  # before the worker can answer
        found = self.previews.request(key, work)
        if found is not None:
            self.preview.value = found

    def _preview_ready(self, key: Hashable, html: str) -> None:
        with self._lock:
            if self._keys[0] != key:
                return
        self.preview.value = html

    def _logs_ready(self, key: Hashable, html: str) -> None:
        with self._lock:
            if self._keys[1] != key:
                return
        self.logs.value = html

    def clear(self) -> None:
        with self._lock:
            self.record, self._keys = None, (None, None)
        self.previews.want()
        self.log_lines.want()

    def wait_idle(self, timeout: float | None = 30) -> bool:
        return self.previews.wait_idle(timeout) and self.log_lines.wait_idle(timeout)

    def close(self) -> None:
        self.previews.close()
        self.log_lines.close()
