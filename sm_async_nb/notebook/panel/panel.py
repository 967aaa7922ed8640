"""The live panel: a view over the journal that the tracker's background thread keeps current.

``Panel`` is a plain object that owns its widgets (it is not a widget): display hands over to its
root box, ``close()`` unsubscribes and closes what it made, and nothing else stops with it.

Data: nothing is held in memory but the selection and the page shown. Each render asks the
journal, in SQL, for one page of the filtered, sorted rows and a few counts (``query.py``), so a
refresh over 100,000 tracked invocations decodes 20 rows, not 100,000.

Threads: every widget is created here, on the thread that builds the panel (the kernel's main
thread). Afterwards three kinds of threads assign traits: the kernel's main thread (clicks,
filter edits), the tracker's poller (after each refresh) and the panel's background workers
(actions, previews, logs, endpoint status). Renders go through ``_render`` under one re-entrant
lock and only assign simple traits; traitlets sends a trait only when its value changed, so a
refresh that changed one row sends that row's cells and the header, nothing else. Lock order is
always panel lock → journal lock; the panel never calls the tracker or AWS while holding its
lock (slow look-ups are queued to workers), and the tracker publishes after releasing its own.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from ...handles import HandleParts
from ...journal import views
from ...records import FINISHED, UNSUCCESSFUL, InvocationRecord
from ...results import loading as results
from . import actions
from .background import BackgroundAction
from .details import DetailsView, FetchHead, RowLogs
from .handlers import ActionHandlers
from .query import PageData, PanelQuery
from .rows import RowView
from .strip import EndpointStatusFn, EndpointStrip
from .table import PagedTable, RowSlot
from .widgets import PanelWidgets

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


class Panel(ActionHandlers):
    """The live table of tracked invocations (SPEC §5, §14), made by ``client.panel()``; display
    it (twice if you like), ``close()`` when done.

    Args:
        parts: the client's handle parts (context, tracker, submitter).
        page_size: rows per page.
        auto_refresh: start the tracker's background polling.
        clock: the time source (tests pass a fixed one).
        fetch_head: ``(record, limit) -> (first bytes, content type, size)`` of a completed output,
            for the details' preview; default ``results.head`` on the context's S3 client.
        row_logs: ``record -> log lines`` for the details; None hides the log section.
        endpoint_status: ``endpoint name -> EndpointStatus`` for the endpoint strip; None hides it.
        endpoint_interval: the least time between two status fetches of one endpoint.
    """

    def __init__(self, parts: HandleParts, *, page_size: int = 20, auto_refresh: bool = True,
                 clock: Callable[[], float] = time.time, fetch_head: FetchHead | None = None,
                 row_logs: RowLogs | None = None, endpoint_status: EndpointStatusFn | None = None,
                 endpoint_interval: float = 60.0):
        self.parts = parts
        self.ctx = parts.ctx
        self.tracker = parts.tracker
        self.page_size = page_size
        self.last_frame: pd.DataFrame | None = None
        self._clock = clock
        self._lock = threading.RLock()
        self._render_thread: int | None = None
        self._closed = False
        self.query = PanelQuery(self.ctx.journal, self.ctx.origin, page_size)
        self._data: PageData | None = None
        self._selected: set[str] = set()
        self._selection_version = 0
        self._selection_cache: dict[str, tuple[Any, Any]] = {}
        self._forget_armed: frozenset[str] | None = None
        self._errors_seen = self.tracker.stats.errors
        self._refresh_error: str | None = None
        self._stopping = False
        self._uri_snapshot = ""
        self._batch_names: dict[str, str] = {}
        self.details = DetailsView(fetch_head if fetch_head is not None else functools.partial(results.head, self.ctx),
                                   row_logs, csv_header=self.ctx.settings.csv_output_header)
        self.strip = (EndpointStrip(endpoint_status, min_interval=endpoint_interval, clock=clock)
                      if endpoint_status is not None else None)
        self._build()
        self._background = BackgroundAction(busy=self.w.set_busy, finish=self._finish_action, say=self._say,
                                            describe=actions.describe_error)
        with self._lock:
            self._render()
        self._unsubscribe = self.tracker.subscribe(self._on_refresh)
        if auto_refresh:
            self.tracker.start()
            with self._lock:
                self._render()

    # --- widgets -----------------------------------------------------------------------------

    def _build(self) -> None:
        self.table = PagedTable(self.page_size, self._guard(self._on_toggle), self._guard(self._on_open),
                                self._guard(self._on_sort))
        w = self.w = PanelWidgets(self.table, auto_refresh=self.tracker.running,
                                  poll_interval=self.ctx.settings.poll_interval,
                                  strip=self.strip.html if self.strip is not None else None)
        self.widget = w.root
        for name in ("status_filter", "endpoint_filter", "text_filter"):
            getattr(w, name).observe(self._guard(self._on_filter), names="value")
        w.auto.observe(self._guard(self._on_auto), names="value")
        w.interval.observe(self._guard(self._on_interval), names="value")
        w.uri_text.observe(self._guard(self._on_uri_edit), names="value")
        for name, handler in (("prev", lambda: self._turn(-1)), ("next", lambda: self._turn(1)),
                              ("select_shown", self._on_select_shown), ("clear", self._on_clear),
                              ("load", self._on_load), ("why", self._on_why), ("uris", self._on_uris),
                              ("forget", self._on_forget), ("resubmit", self._on_resubmit),
                              ("refresh_now", self._on_refresh_now), ("hide", self._on_hide)):
            getattr(w, name).on_click(self._guard(lambda _button, h=handler: h()))

    def _owned_widgets(self) -> list[W.Widget]:
        extra = [*self.details.widgets(), *([self.strip.html] if self.strip is not None else [])]
        found = {id(widget): widget for widget in self.w.owned()}
        for widget in extra:
            found.setdefault(id(widget), widget)
            for attr in ("layout", "style"):
                sub = getattr(widget, attr, None)
                if isinstance(sub, W.Widget):
                    found.setdefault(id(sub), sub)
        return list(found.values())

    # --- display and lifetime ----------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """Display is the root box's: every display of this panel is a view of the same models."""
        if self._closed:
            return {"text/plain": repr(self)}
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        if self._closed:
            return "<sm_async_nb Panel (closed)>"
        total = sum(self._data.counts.values()) if self._data is not None else 0
        return f"<sm_async_nb Panel ({total} invocations)>"

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop listening and close this panel's widgets. The tracker and other panels go on."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._unsubscribe()
        self._background.close()
        self.details.close()
        if self.strip is not None:
            self.strip.close()
        for widget in self._owned_widgets():
            widget.close()

    def wait_idle(self, timeout: float | None = 30) -> bool:
        """Wait for the running action and background look-ups; True if none is left."""
        done = self._background.wait_idle(timeout) and self.details.wait_idle(timeout)
        return done and (self.strip is None or self.strip.wait_idle(timeout))

    @property
    def selected(self) -> list[str]:
        """Selected inference ids, in display order."""
        with self._lock:
            return [r.inference_id for r in self._selected_records()]

    def select(self, inference_ids: list[str]) -> None:
        with self._lock:
            self._set_selection(set(self.query.existing(inference_ids)))
            self._render()

    def refresh(self) -> None:
        """Re-read the journal and redraw now (no AWS call; "Refresh now" also polls S3)."""
        with self._lock:
            if not self._closed:
                self._render()

    def show_details(self, inference_id: str) -> None:
        """Open the details of one row (what a click on its id does)."""
        record = self.ctx.journal.get(inference_id)
        if record is None:
            self._say(f"{inference_id} is no longer tracked.")
            return
        with self._lock:
            self.details.show(record, self._clock())
            self.w.show_details(self.details.box)
        self._say(f"Details of {record.label or record.inference_id} below.")

    # --- selection ---------------------------------------------------------------------------

    def _set_selection(self, ids: set[str]) -> None:
        self._selected = ids
        self._selection_version += 1

    def _selected_records(self) -> list[InvocationRecord]:
        return self.query.records(self._selected)

    def _cached(self, name: str, key: Any, compute: Callable[[], Any]) -> Any:
        """Selection-derived values (its batch, how many the filters hide) are computed once per
        selection, filter and journal state, not on every render."""
        found = self._selection_cache.get(name)
        if found is None or found[0] != key:
            found = (key, compute())
            self._selection_cache[name] = found
        return found[1]

    # --- rendering (always under self._lock) -------------------------------------------------

    def _rendering(self) -> bool:
        """True inside _render on this thread: observers then ignore the values we assign."""
        return self._render_thread == threading.get_ident()

    def _render(self) -> None:
        if self._closed:
            return
        self._render_thread = threading.get_ident()
        try:
            now, w, q = self._clock(), self.w, self.query
            previous = self._data
            data = self._data = q.read(now)
            if previous is not None and previous.counts != data.counts and self._selected:
                self._set_selection(self._selected & q.existing(self._selected))  # forgotten elsewhere
            self.table.show([RowView.of(r, now) for r in data.rows], self._selected)
            self.table.show_sort(q.sort, q.descending)
            w.show_pager(data.page, data.pages, data.matching, sum(data.counts.values()))
            w.show_counts(data.counts)
            w.show_endpoints(q.endpoints(data.counts))
            self._render_progress(data)
            notes = ([self.tracker.problem] if self.tracker.problem else []) + list(self.tracker.notices.values())
            if self._refresh_error:
                notes.append(f"Last refresh failed: {self._refresh_error}")
            w.show_refresh(self.tracker.stats, notes, now)
            if not self._stopping:
                w.auto.value = self.tracker.running
            w.interval.value = self.ctx.settings.poll_interval
            if self._forget_armed is not None and self._forget_armed != frozenset(self._selected):
                self._forget_armed = None
            key = (self._selection_version, q.row_filter(), tuple(sorted(data.counts.items())))
            hidden = self._cached("hidden", key, lambda: q.hidden(self._selected))
            w.show_selection(len(self._selected), hidden, self._forget_armed is not None)
            if self.strip is not None:
                self.strip.update(q.unfinished_endpoints(), now)
            self._render_details(data, now)
        finally:
            self._render_thread = None

    def _render_details(self, data: PageData, now: float) -> None:
        """Keep an open details view current (its row's status, time left)."""
        shown = self.details.record
        if shown is None or self.details.box not in self.w.details.children:
            return
        record = next((r for r in data.rows if r.inference_id == shown.inference_id), None)
        if record is None:
            record = self.ctx.journal.get(shown.inference_id)
        if record is not None:
            self.details.show(record, now)

    def _render_progress(self, data: PageData) -> None:
        """Progress of the selected batch when the selection is inside one, else of what is shown."""
        batches = self._cached("batches", self._selection_version, lambda: self.query.batches(self._selected))
        batch_id = next(iter(batches)) if len(batches) == 1 else None
        if batch_id is not None:
            counts = views.status_counts(self.ctx.journal, views.RowFilter(self.ctx.origin, batch_id=batch_id))
            total = sum(counts.values())
            finished = sum(n for s, n in counts.items() if s in FINISHED)
            unsuccessful = sum(n for s, n in counts.items() if s in UNSUCCESSFUL)
            self.w.show_progress(finished, total, unsuccessful, f"batch {self._batch_name(batch_id)}")
        else:
            self.w.show_progress(data.finished, data.matching, data.unsuccessful, "shown")

    def _batch_name(self, batch_id: str) -> str:
        if batch_id not in self._batch_names:
            record = self.ctx.journal.get_batch(batch_id)
            self._batch_names[batch_id] = (record.label if record else None) or batch_id
        return self._batch_names[batch_id]

    def _say(self, message: str) -> None:
        self.w.message.value = message

    # --- the tracker's thread ----------------------------------------------------------------

    def _on_refresh(self, changes: object) -> None:
        """Called by the tracker after every refresh, on its thread. Cheap (a few indexed queries,
        one page of rows, one page of trait assignments) and never raises."""
        try:
            with self._lock:
                if self._closed:
                    return
                stats = self.tracker.stats
                self._refresh_error = stats.last_error if stats.errors != self._errors_seen else None
                self._errors_seen = stats.errors
                self._render()
        except Exception as exc:  # a view problem must never reach the tracker
            log.exception("panel update failed")
            try:
                self._say(f"Panel update failed: {type(exc).__name__}: {exc}")
            except Exception:
                log.exception("could not show the panel update failure either")

    # --- user events (kernel main thread) ----------------------------------------------------

    def _guard(self, handler: Callable[..., None]) -> Callable[..., None]:
        """Handlers report problems in the status line instead of a traceback in the log."""

        def guarded(*args: Any) -> None:
            if self._closed or self._rendering():
                return
            try:
                handler(*args)
            except Exception as exc:
                self._say(actions.describe_error(exc))

        return guarded

    def _on_filter(self, _change: Any) -> None:
        with self._lock:
            q, w = self.query, self.w
            q.status, q.endpoint = w.status_filter.value or "", w.endpoint_filter.value or ""
            q.text = w.text_filter.value
            q.page = 0
            self._render()

    def _on_sort(self, key: str) -> None:
        with self._lock:
            self.query.set_sort(key)
            self._render()

    def _turn(self, step: int) -> None:
        with self._lock:
            self.query.page += step
            self._render()

    def _on_toggle(self, slot: RowSlot, value: bool) -> None:
        """A row's checkbox: the selection is kept by id, so it survives paging and filtering."""
        with self._lock:
            if slot.inference_id is not None:
                changed = set(self._selected)
                (changed.add if value else changed.discard)(slot.inference_id)
                self._set_selection(changed)
                self._render()

    def _on_open(self, slot: RowSlot) -> None:
        if slot.inference_id is not None:
            self.show_details(slot.inference_id)

    def _on_select_shown(self) -> None:
        with self._lock:
            self._set_selection(self._selected | set(self.query.matching_ids()))
            self._render()

    def _on_clear(self) -> None:
        with self._lock:
            self._set_selection(set())
            self._render()

    def _on_hide(self) -> None:
        self.details.clear()
        self.w.show_details()
