"""``Invocation`` and ``InvocationBatch`` in a notebook: a compact status line (status, counts,
elapsed) that the tracker keeps current while the kernel is idle, instead of the plain repr, with
its notices (``notices.py``): when the batch's last part finished, when its endpoint sits at 0
instances with work waiting (from the endpoint monitor's cached status: no request), when its
requests are about to expire.

``register(shell)`` adds a mimebundle formatter for both types in a Jupyter kernel only; a
terminal IPython and plain Python keep the repr. Each displayed line listens to the tracker until
its invocations have finished, then stops listening. Text from outside is escaped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ..display.text import MUTED_COLOUR, esc, human_duration, short_id, status_badge
from ..handles import HandleParts, Invocation, InvocationBatch
from ..journal import activity, views
from ..records import FINISHED, UNSUCCESSFUL, JobState, Status
from . import notices
from .progress import in_kernel

log = logging.getLogger(__name__)


class StatusLine:
    """One handle's live line: an HTML text, and a progress bar for a batch."""

    def __init__(self, handle: Invocation | InvocationBatch, clock: Callable[[], float] = time.time):
        self._handle, self._clock = handle, clock
        self._parts: HandleParts = handle._parts  # the handle's context and tracker
        self.text = W.HTML()
        children: list[W.Widget] = [self.text]
        self.bar: W.IntProgress | None = None
        if isinstance(handle, InvocationBatch):
            self.bar = W.IntProgress(min=0, max=1, layout=W.Layout(width="160px"))
            children.insert(0, self.bar)
        self.box = W.HBox(children, layout=W.Layout(align_items="center"), _dom_classes=("sm-async-status-line",))
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self.done = False
        if not self.update():
            self._unsubscribe = self._parts.tracker.subscribe(lambda _changes: self._on_refresh())

    def _on_refresh(self) -> None:
        try:
            if self.update() and self._unsubscribe is not None:
                self._unsubscribe()
        except Exception:  # a view problem must never reach the tracker
            log.exception("status line update failed")

    def update(self) -> bool:
        """Redraw; True once every invocation has finished (nothing more will change)."""
        with self._lock:
            now = self._clock()
            if isinstance(self._handle, InvocationBatch):
                self.done = self._draw_batch(self._handle, now)
            else:
                self.done = self._draw_one(self._handle, now)
            return self.done

    def _draw_one(self, handle: Invocation, now: float) -> bool:
        record = self._parts.ctx.journal.get(handle.inference_id)
        if record is None:
            self.text.value = f"<code>{esc(handle.inference_id)}</code> · forgotten"
            return True
        finished = record.status in FINISHED
        took = record.latency if finished else (None if record.submitted_at is None else now - record.submitted_at)
        bits = [status_badge(record.status), esc(record.label) if record.label else "",
                f'<code title="{esc(record.inference_id)}">{esc(short_id(record.inference_id))}</code>',
                esc(record.endpoint_name), f"{'latency' if finished else 'elapsed'} {esc(human_duration(took))}"]
        if record.status is Status.FAILED and record.failure_reason:
            reason = record.failure_reason.strip().splitlines()[0][:120] if record.failure_reason.strip() else ""
            bits.append(f'<span style="color:{MUTED_COLOUR}">{esc(reason)}</span>')
        found = []
        if record.status is Status.PENDING:
            left = record.service_deadline() - now
            soon = 0 <= left < notices.EXPIRING_WITHIN
            found = self._warnings(record.endpoint_name, (1, left) if soon else (0, None))
        self.text.value = " · ".join(b for b in bits if b) + notices.notices_html(found)
        return finished

    def _warnings(self, endpoint: str, expiring: tuple[int, float | None]) -> list[notices.Notice]:
        """The endpoint at 0 instances with work waiting (its cached status: no request), and how many
        requests expire soon (how many, the first deadline from now)."""
        status = self._parts.monitor.cached(endpoint)
        found = [notices.zero_instances(status) if status is not None else None, notices.expiring(*expiring)]
        return [n for n in found if n is not None]

    def _draw_batch(self, handle: InvocationBatch, now: float) -> bool:
        ctx = self._parts.ctx
        counts = views.status_counts(ctx.journal, views.RowFilter(ctx.origin, batch_id=handle.batch_id))
        journaled = sum(counts.values())
        total = max(journaled, handle.record.size)  # a stopped dataset submission never sent the rest
        finished = sum(n for s, n in counts.items() if s in FINISHED)
        unsuccessful = sum(n for s, n in counts.items() if s in UNSUCCESSFUL) + total - journaled
        created = handle.record.created_at
        parts = ", ".join([f"{n} {s.value.lower()}" for s, n in sorted(counts.items(), key=lambda i: i[0].value)]
                          + ([f"{total - journaled} never sent"] if total > journaled else []))
        name = esc(handle.label or handle.batch_id)
        elapsed = "" if created is None else f" · elapsed {esc(human_duration(now - created))}"
        job = handle.job_state
        # nothing more will change (what was never sent stays so), unless a job still reads, sends or retries
        done = finished >= journaled and job in (None, JobState.DONE, JobState.CANCELLED)
        if job is not None and not done:
            rate, eta = handle.rate_per_min, handle.eta
            pace = "" if rate is None else f" · {rate:,.1f}/min"
            pace += "" if eta is None else f" · ETA {eta.astimezone().strftime('%H:%M:%S')}"
            elapsed += f" · job {esc(job.value)}{esc(pace)}"
        if done:
            span = activity.span(ctx.journal, activity.Scope(ctx.origin, batch_id=handle.batch_id))
            found = [notices.batch_finished(handle.label or handle.batch_id, counts, span.last if span else now)]
        else:
            soon, first = views.expiring(ctx.journal, views.RowFilter(ctx.origin, batch_id=handle.batch_id), now,
                                         notices.EXPIRING_WITHIN)
            found = self._warnings(handle.endpoint_name, (soon, None if first is None else first - now))
        self.text.value = (f"<b>{name}</b> · {finished:,}/{total:,} finished ({esc(parts)})"
                           f" · {esc(handle.endpoint_name)}{elapsed}" + notices.notices_html(found))
        assert self.bar is not None
        with self.bar.hold_sync():
            self.bar.max = max(1, total)
            self.bar.value = finished
            self.bar.bar_style = ("danger" if unsuccessful else "success") if done else \
                ("warning" if unsuccessful else "info")
        return done

    def stop(self) -> None:
        """Stop following the tracker; the line keeps showing what it last drew."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def close(self) -> None:
        self.stop()
        for widget in (self.box, self.text, *([self.bar] if self.bar is not None else [])):
            widget.close()


_following: dict[tuple[str, str], StatusLine] = {}  # the newest live line of each handle
_following_lock = threading.Lock()


def _key(handle: Invocation | InvocationBatch) -> tuple[str, str]:
    return ("batch", handle.batch_id) if isinstance(handle, InvocationBatch) else ("one", handle.inference_id)


def status_line_bundle(handle: Any, include: Any = None, exclude: Any = None) -> dict[str, Any] | None:
    """The mimebundle formatter: the live line's widget view, plus the plain repr."""
    try:
        line = StatusLine(handle)
    except LookupError:  # a forgotten handle or batch: the repr says so
        return None
    # Showing a handle again: only the newest line follows the tracker (one subscriber per handle).
    with _following_lock:
        previous = _following.pop(_key(handle), None)
        if not line.done:
            _following[_key(handle)] = line
    if previous is not None:
        previous.stop()
    bundle = line.box._repr_mimebundle_() or {}
    return {**bundle, "text/plain": repr(handle)}


def register(shell: Any) -> bool:
    """In a Jupyter kernel, show handles as live status lines; True when registered."""
    if not in_kernel():
        return False
    formatter = shell.display_formatter.mimebundle_formatter
    for kind in (Invocation, InvocationBatch):
        formatter.for_type(kind, status_line_bundle)
    return True


def unregister(shell: Any) -> None:
    formatter = shell.display_formatter.mimebundle_formatter
    for kind in (Invocation, InvocationBatch):
        try:
            formatter.pop(kind)
        except KeyError:
            pass
