"""The live panel: a view over the journal that one loop keeps current (SPEC §5, §14).

``Panel`` wires four parts with one job each, after dask's progress bar (a model that computes, a
view that draws what one loop hands it):

- ``state.PanelState``: the query, selection, details row, messages and the last snapshot; plain
  data, no widgets, no threads, no locks;
- ``loop.PanelLoop``: one queue and one thread; user intents, tracker refreshes and worker answers
  go there, are applied in order, and each turn hands one immutable ``Snapshot`` to the view;
- ``view.PanelView``: the widgets, made on the thread that builds the panel (the kernel's main
  thread); they only draw snapshots, and their events only post intents;
- ``workers.PanelWorkers``: slow work (load, resubmit, refresh now, previews, log lines, endpoint
  statuses, the activity charts) on worker threads, never the kernel's main thread; answers come
  back as intents.

Data: nothing is held in memory but the selection and the page shown. Each snapshot asks the
journal, in SQL, for one page of the filtered, sorted rows and a few counts (``query.py``), so a
refresh over 100,000 tracked invocations decodes 20 rows, not 100,000.

``Panel`` is a plain object that owns its widgets (it is not a widget): display hands over to the
view's root box (so displaying it twice shows two views of the same models), ``close()``
unsubscribes and stops what it started, and nothing else stops with it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...handles import HandleParts
from ...results import loading as results
from ...tracking.bus import StatusChange
from .details import FetchHead, RowLogs
from .intents import Intent, OpenDetails, Redraw, Refreshed, Select, ShowActivity
from .loop import PanelLoop
from .query import JournalReader
from .state import PanelState
from .strip import EndpointStatusFn, RouterStatusFn
from .view import PanelView
from .workers import EndpointHistoryFn, PanelWorkers

if TYPE_CHECKING:
    import pandas as pd


class Panel:
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
        router_status: ``router name -> RouterStatus``: the strip's line of a routing target's rows.
        endpoint_interval: the least time between two status fetches of one endpoint.
        endpoint_history: ``endpoint name -> [EndpointSample]`` (the monitor's history of the
            statuses it fetched), drawn in the activity view; None leaves that chart out.

    Raises:
        JournalError: the journal cannot be read for the first snapshot.
    """

    def __init__(self, parts: HandleParts, *, page_size: int = 20, auto_refresh: bool = True,
                 clock: Callable[[], float] = time.time, fetch_head: FetchHead | None = None,
                 row_logs: RowLogs | None = None, endpoint_status: EndpointStatusFn | None = None,
                 endpoint_interval: float = 60.0, endpoint_history: EndpointHistoryFn | None = None,
                 router_status: RouterStatusFn | None = None):
        self.parts = parts
        self.ctx = parts.ctx
        self.tracker = parts.tracker
        self._closed = False
        self.state = PanelState(JournalReader(self.ctx.journal, self.ctx.origin, page_size), self.tracker,
                                poll_interval=lambda: self.ctx.settings.poll_interval, logs=row_logs is not None,
                                strip_interval=endpoint_interval if endpoint_status is not None else None,
                                job_problem=lambda: parts.jobs.problem)
        self.view = PanelView(page_size, strip=endpoint_status is not None)
        self.widget = self.view.root
        self.loop = PanelLoop(self.state, draw=self.view.draw, say=self.view.say, clock=clock)
        self.workers = PanelWorkers(
            parts, self.loop.post, row_logs=row_logs, endpoint_status=endpoint_status,
            endpoint_history=endpoint_history, router_status=router_status,
            fetch_head=fetch_head if fetch_head is not None else functools.partial(results.head, self.ctx))
        self._unsubscribe = self.tracker.subscribe(self._on_refresh)
        if auto_refresh:
            self.tracker.start()
        try:
            self.loop.start(self.workers.run, Redraw())
        except BaseException:  # nothing of a panel that was never shown stays behind
            self._unsubscribe()
            self.workers.close()
            self.view.close()
            raise
        self.view.connect(self.loop.post)

    # --- display and lifetime ----------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """Display is the root box's: every display of this panel is a view of the same models."""
        if self._closed:
            return {"text/plain": repr(self)}
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        if self._closed:
            return "<sm_async_nb Panel (closed)>"
        last = self.state.last
        return f"<sm_async_nb Panel ({last.total if last is not None else 0} invocations)>"

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop listening and close this panel's widgets. The tracker and other panels go on."""
        if self._closed:
            return
        self._closed = True
        self._unsubscribe()
        self.loop.close()
        self.workers.close()
        self.view.close()

    def wait_idle(self, timeout: float | None = 30) -> bool:
        """Wait until everything posted so far is drawn and no background work is left (answers
        of finished work are drawn too); True when so."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        while True:
            if not (self.loop.flush(left()) and self.workers.wait_idle(left())):
                return False
            if self.loop.idle and self.workers.idle:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    # --- what a cell may ask -----------------------------------------------------------------

    @property
    def last_frame(self) -> pd.DataFrame | None:
        """The DataFrame "Load" made last (also where it goes outside IPython)."""
        return self.workers.last_frame

    @property
    def selected(self) -> list[str]:
        """Selected inference ids, in display order (once what the user did before is applied)."""
        self.loop.flush()
        last = self.state.last
        ids = last.selected if last is not None else frozenset()
        return [r.inference_id for r in self.state.reader.records(ids)]

    def select(self, inference_ids: Sequence[str]) -> None:
        """Select these rows (those still tracked); returns once drawn."""
        self._ask(Select(tuple(inference_ids)))

    def refresh(self) -> None:
        """Re-read the journal and redraw (no AWS call; "Refresh now" also polls S3); returns once drawn."""
        self._ask(Redraw())

    def show_details(self, inference_id: str) -> None:
        """Open the details of one row (what a click on its id does); returns once drawn."""
        self._ask(OpenDetails(inference_id))

    def show_activity(self, on: bool = True) -> None:
        """Show (or hide) the activity charts beside the table, as the Activity toggle does; returns
        once drawn (the charts themselves arrive from a worker: ``wait_idle()`` waits for them)."""
        self._ask(ShowActivity(bool(on)))

    def _ask(self, intent: Intent) -> None:
        self.loop.post(intent)
        self.loop.flush()

    # --- the tracker's thread ----------------------------------------------------------------

    def _on_refresh(self, changes: Sequence[StatusChange]) -> None:
        """Called by the tracker after every refresh, on its thread: one intent, never raises."""
        stats = self.tracker.stats
        self.loop.post(Refreshed(stats.errors, stats.last_error))
