"""The live panel: a view over the journal that the tracker's background thread keeps current.

``Panel`` is a plain object that owns its widgets (it is not a widget): display hands over to its
root box, ``close()`` unsubscribes and closes what it made, and nothing else stops with it.

Threads: every widget is created here, on the thread that builds the panel (the kernel's main
thread). Afterwards two kinds of threads render: the kernel's main thread (button clicks, filter
edits) and the tracker's poller (after each refresh). Both go through ``_render`` under one
re-entrant lock, and ``_render`` only assigns simple traits; traitlets sends a trait only when its
value changed, so a refresh that changed one row sends that row's cells and the header, nothing
else. Slow actions (load, resubmit, refresh now) run in the panel's own worker thread
(``background.py``), so a click never blocks the kernel. Lock order is always panel lock →
journal lock; the panel never calls the tracker or AWS while holding its lock, and the tracker
publishes after releasing its own, so the poller and a click can never deadlock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from ...handles import HandleParts
from ...records import InvocationRecord
from ...tracking.bus import StatusChange
from . import actions
from .background import BackgroundAction
from .rows import RowModel, RowView
from .table import PagedTable
from .widgets import PanelWidgets

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


class Panel:
    """The live table of tracked invocations (SPEC §5), made by ``client.panel()``; display it
    (twice if you like), ``close()`` when done."""

    def __init__(self, parts: HandleParts, *, page_size: int = 20, auto_refresh: bool = True,
                 clock: Callable[[], float] = time.time):
        self.parts = parts
        self.ctx = parts.ctx
        self.tracker = parts.tracker
        self.page_size = page_size
        self.last_frame: pd.DataFrame | None = None
        self._clock = clock
        self._lock = threading.RLock()
        self._render_thread: int | None = None
        self._closed = False
        self._model = RowModel()
        self._selected: set[str] = set()
        self._page = 0
        self._forget_armed: frozenset[str] | None = None
        self._errors_seen = self.tracker.stats.errors
        self._refresh_error: str | None = None
        self._stopping = False
        self._uri_snapshot = ""
        self._batch_names: dict[str, str] = {}
        self._build()
        self._background = BackgroundAction(busy=self.w.set_busy, finish=self._finish_action, say=self._say,
                                            describe=actions.describe_error)
        with self._lock:
            self._reload()
            self._render()
        self._unsubscribe = self.tracker.subscribe(self._on_refresh)
        if auto_refresh:
            self.tracker.start()
            with self._lock:
                self._render()

    # --- widgets -----------------------------------------------------------------------------

    def _build(self) -> None:
        self.table = PagedTable(self.page_size, self._guard(self._on_toggle))
        w = self.w = PanelWidgets(self.table, auto_refresh=self.tracker.running,
                                  poll_interval=self.ctx.settings.poll_interval)
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
                              ("refresh_now", self._on_refresh_now), ("hide", lambda: self.w.show_details())):
            getattr(w, name).on_click(self._guard(lambda _button, h=handler: h()))

    def _owned_widgets(self) -> list[W.Widget]:
        return self.w.owned()

    # --- display and lifetime ----------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """Display is the root box's: every display of this panel is a view of the same models."""
        if self._closed:
            return {"text/plain": repr(self)}
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._model)} invocations"
        return f"<sm_async_nb Panel ({state})>"

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
        for widget in self._owned_widgets():
            widget.close()

    def wait_idle(self, timeout: float | None = 30) -> bool:
        """Wait for the running action (load, resubmit, refresh now); True if none is left."""
        return self._background.wait_idle(timeout)

    @property
    def selected(self) -> list[str]:
        """Selected inference ids, in display order."""
        with self._lock:
            return [r.inference_id for r in self._selected_records()]

    def select(self, inference_ids: Sequence[str]) -> None:
        """Replace the selection (ids that are not tracked are ignored)."""
        with self._lock:
            self._selected = {i for i in inference_ids if i in self._model}
            self._forget_armed = None
            self._render()

    def refresh(self) -> None:
        """Re-read the journal and redraw now (no AWS call; "Refresh now" also polls S3)."""
        with self._lock:
            if not self._closed:
                self._reload()
                self._render()

    # --- data --------------------------------------------------------------------------------

    def _reload(self) -> None:
        self._model.load(self.ctx.records())
        self._selected = {i for i in self._selected if i in self._model}

    def _sync_with_journal(self) -> None:
        """Events carry status changes only; submissions, forgets and other processes show up as
        different per-status counts (one indexed query), which triggers a full reload."""
        if self.ctx.journal.counts(self.ctx.origin) != self._model.counts():
            self._reload()

    def _selected_records(self) -> list[InvocationRecord]:
        rows = [self._model.get(i) for i in self._selected]
        return sorted((r for r in rows if r is not None),
                      key=lambda r: (-(r.submitted_at or 0.0), r.batch_index or 0))

    def _shown(self) -> list[InvocationRecord]:
        w = self.w
        return self._model.filtered(w.status_filter.value or "", w.endpoint_filter.value or "", w.text_filter.value)

    # --- rendering (always under self._lock) -------------------------------------------------

    def _rendering(self) -> bool:
        """True inside _render on this thread: observers then ignore the values we assign."""
        return self._render_thread == threading.get_ident()

    def _render(self) -> None:
        if self._closed:
            return
        self._render_thread = threading.get_ident()
        try:
            now, w = self._clock(), self.w
            shown = self._shown()
            pages = max(1, math.ceil(len(shown) / self.page_size))
            self._page = min(max(self._page, 0), pages - 1)
            start = self._page * self.page_size
            self.table.show([RowView.of(r, now) for r in shown[start:start + self.page_size]], self._selected)
            w.show_pager(self._page, pages, len(shown), len(self._model))
            w.show_counts(self._model.counts())
            w.show_endpoints(self._model.endpoints())
            self._render_progress(shown)
            notes = ([self.tracker.problem] if self.tracker.problem else []) + list(self.tracker.notices.values())
            if self._refresh_error:
                notes.append(f"Last refresh failed: {self._refresh_error}")
            w.show_refresh(self.tracker.stats, notes, now)
            if not self._stopping:
                w.auto.value = self.tracker.running
            w.interval.value = self.ctx.settings.poll_interval
            if self._forget_armed is not None and self._forget_armed != frozenset(self._selected):
                self._forget_armed = None
            hidden = len(self._selected - {r.inference_id for r in shown}) if self._selected else 0
            w.show_selection(len(self._selected), hidden, self._forget_armed is not None)
        finally:
            self._render_thread = None

    def _render_progress(self, shown: list[InvocationRecord]) -> None:
        """Progress of the selected batch when the selection is inside one, else of what is shown."""
        finished, total, unsuccessful, batch_id = self._model.progress(self._selected_records(), shown)
        self.w.show_progress(finished, total, unsuccessful,
                             f"batch {self._batch_name(batch_id)}" if batch_id else "shown")

    def _batch_name(self, batch_id: str) -> str:
        if batch_id not in self._batch_names:
            record = self.ctx.journal.get_batch(batch_id)
            self._batch_names[batch_id] = (record.label if record else None) or batch_id
        return self._batch_names[batch_id]

    def _say(self, message: str) -> None:
        self.w.message.value = message

    # --- the tracker's thread ----------------------------------------------------------------

    def _on_refresh(self, changes: Sequence[StatusChange]) -> None:
        """Called by the tracker after every refresh, on its thread. Cheap (incremental model
        update, one count query, one page of trait assignments) and never raises."""
        try:
            with self._lock:
                if self._closed:
                    return
                stats = self.tracker.stats
                self._refresh_error = stats.last_error if stats.errors != self._errors_seen else None
                self._errors_seen = stats.errors
                self._model.apply(c.record for c in changes if c.record.origin == self.ctx.origin)
                self._sync_with_journal()
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
            self._page = 0
            self._render()

    def _turn(self, step: int) -> None:
        with self._lock:
            self._page += step
            self._render()

    def _on_toggle(self, slot: Any, value: bool) -> None:
        """A row's checkbox: the selection is kept by id, so it survives paging and filtering."""
        with self._lock:
            if slot.inference_id is not None:
                (self._selected.add if value else self._selected.discard)(slot.inference_id)
                self._render()

    def _on_select_shown(self) -> None:
        with self._lock:
            self._selected |= {r.inference_id for r in self._shown()}
            self._render()

    def _on_clear(self) -> None:
        with self._lock:
            self._selected.clear()
            self._render()

    def _on_auto(self, change: Any) -> None:
        if change["new"]:
            self.tracker.start()
            self._say(f"Auto-refresh on: polling at least every {self.ctx.settings.poll_interval:g} s.")
            return
        self._stopping = True
        self._say("Auto-refresh off.")

        def stop() -> None:  # joins the poller thread: never on the kernel's main thread
            try:
                self.tracker.stop()
            finally:
                self._stopping = False

        threading.Thread(target=stop, name="sm-async-nb-panel-stop", daemon=True).start()

    def _on_interval(self, change: Any) -> None:
        try:
            self.ctx.settings.poll_interval = float(change["new"])
        except Exception as exc:
            self._say(f"Interval not changed: {exc}")
            return
        self.tracker.poke()
        self._say(f"Polling at least every {self.ctx.settings.poll_interval:g} s.")

    def _on_uri_edit(self, change: Any) -> None:
        """The URI box is for copying: edits are undone."""
        if change["new"] != self._uri_snapshot:
            self.w.uri_text.value = self._uri_snapshot

    def _selection_or_say(self) -> list[InvocationRecord]:
        with self._lock:
            records = self._selected_records()
        if not records:
            self._say("Select one or more rows first (tick their boxes).")
        return records

    def _on_why(self) -> None:
        records = self._selection_or_say()
        if not records:
            return
        html = actions.failure_html(records)
        if not html:
            self.w.show_details()
            self._say(f"No failure reason: the selection is {actions.status_summary(records)}.")
            return
        self.w.reasons.value = html
        self.w.show_details(self.w.reasons)
        self._say("Failure reasons below.")

    def _on_uris(self) -> None:
        records = self._selection_or_say()
        if not records:
            return
        self._uri_snapshot = actions.uris_text(records)
        self.w.uri_text.value = self._uri_snapshot
        self.w.show_details(self.w.uri_text)
        self._say(f"S3 URIs of {len(records)} invocation(s) below: select and copy them.")

    def _on_forget(self) -> None:
        records = self._selection_or_say()
        if not records:
            return
        ids = frozenset(r.inference_id for r in records)
        with self._lock:
            if self._forget_armed != ids:
                self._forget_armed = ids
                self._render()
                self._say(f"Forget {len(ids)} invocation(s)? Their S3 objects stay. Click again to confirm.")
                return
            self._forget_armed = None
        forgotten = self.ctx.journal.delete(sorted(ids))
        with self._lock:
            self._selected -= ids
            self._reload()
            self._render()
        self._say(f"Forgot {forgotten} invocation(s); their S3 objects are untouched.")

    # --- slow actions, in the panel's worker thread ------------------------------------------

    def _run(self, busy: str, work: Callable[[], str]) -> None:
        self._background.run(busy, work)

    def _finish_action(self, message: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._reload()
            self._render()
            self._say(message)

    def _on_load(self) -> None:
        name = actions.check_variable_name(self.w.var.value)
        records = self._selection_or_say()
        if not records:
            return
        namespace = actions.user_namespace()

        def work() -> str:
            frame, note = actions.load_frame(self.parts, records)
            self.last_frame = frame
            where = name
            if namespace is None:
                where = "panel.last_frame (not in IPython)"
            else:
                namespace[name] = frame
            return f"{where}: DataFrame with {len(frame):,} rows × {len(frame.columns)} columns{note}."

        self._run(f"Loading {len(records)} output(s) into {name}…", work)

    def _on_resubmit(self) -> None:
        records = self._selection_or_say()
        if not records:
            return

        def work() -> str:
            ids, message = actions.resubmit(self.parts, records)
            with self._lock:
                self._selected = set(ids)
            return message

        self._run(f"Resubmitting {len(records)} invocation(s)…", work)

    def _on_refresh_now(self) -> None:
        def work() -> str:
            changes = self.tracker.refresh()
            stats = self.tracker.stats
            return f"Refreshed: {len(changes)} changed, {stats.s3_requests} S3 request(s)."

        self._run("Refreshing…", work)

