"""The panel's button and control handlers (refresh controls, failure reasons, URIs, forget,
load, resubmit), as a mixin of ``Panel``: they read the selection, call ``actions`` and show the
outcome. Slow ones run in the panel's worker thread (``background.py``), never on the kernel's
main thread; none calls AWS or the tracker while holding the panel's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...context import Context
from ...handles import HandleParts
from ...records import InvocationRecord
from ...tracking.bus import StatusChange
from ...tracking.tracker import Tracker
from . import actions
from .background import BackgroundAction
from .widgets import PanelWidgets

if TYPE_CHECKING:
    import pandas as pd


class ActionHandlers:
    """What the panel's buttons do; ``Panel`` provides the state declared here."""

    parts: HandleParts
    ctx: Context
    tracker: Tracker
    w: PanelWidgets
    last_frame: pd.DataFrame | None
    _lock: threading.RLock
    _background: BackgroundAction
    _stopping: bool
    _uri_snapshot: str
    _forget_armed: frozenset[str] | None
    _selected: set[str]
    _closed: bool

    def _say(self, message: str) -> None:
        raise NotImplementedError

    def _render(self) -> None:
        raise NotImplementedError

    def _selected_records(self) -> list[InvocationRecord]:
        raise NotImplementedError

    def _set_selection(self, ids: set[str]) -> None:
        raise NotImplementedError

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
        forgotten = self.ctx.journal.forget(sorted(ids))
        with self._lock:
            self._set_selection(self._selected - ids)
            self._render()
        self._say(f"Forgot {forgotten} invocation(s); their S3 objects are untouched.")

    # --- slow actions, in the panel's worker thread ------------------------------------------

    def _run(self, busy: str, work: Callable[[], str]) -> None:
        self._background.run(busy, work)

    def _finish_action(self, message: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._render()
            self._say(message)

    def _on_load(self) -> None:
        name = actions.check_variable_name(self.w.var.value)
        records = self._selection_or_say()
        if not records:
            return
        push = actions.user_push()

        def work() -> str:
            frame, note = actions.load_frame(self.parts, records)
            self.last_frame = frame
            where = name
            if push is None:
                where = "panel.last_frame (not in IPython)"
            else:
                push({name: frame})
            return f"{where}: DataFrame with {len(frame):,} rows × {len(frame.columns)} columns{note}."

        self._run(f"Loading {len(records)} output(s) into {name}…", work)

    def _on_resubmit(self) -> None:
        records = self._selection_or_say()
        if not records:
            return

        def work() -> str:
            ids, message = actions.resubmit(self.parts, records)
            with self._lock:
                self._set_selection(set(ids))
            return message

        self._run(f"Resubmitting {len(records)} invocation(s)…", work)

    def _on_refresh_now(self) -> None:
        def work() -> str:
            changes: list[StatusChange] = self.tracker.refresh()
            stats = self.tracker.stats
            return f"Refreshed: {len(changes)} changed, {stats.s3_requests} S3 request(s)."

        self._run("Refreshing…", work)
