"""The panel's view: its widgets, drawn from snapshots, and the user's events turned into intents.

Every widget is made here, on the thread that builds the panel (the kernel's main thread).
``draw(snapshot)`` only assigns simple traits (traitlets sends a trait only when its value
changed, and a table slot showing the same row assigns nothing), so a refresh that changed one row
sends that row's cells and the header lines, nothing else. Events never draw and never read the
journal: each posts one intent to the panel's loop. Our own assignments echo through the widgets'
observers; those seen while drawing (a thread-local flag) are not the user's and are ignored.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import ipywidgets as W

from .intents import (
    AutoRefresh,
    ClearSelection,
    ControlJob,
    DismissNotices,
    Filter,
    Forget,
    HideDetails,
    Intent,
    Load,
    OpenDetails,
    PollInterval,
    RefreshNow,
    Resubmit,
    SelectShown,
    ShowActivity,
    ShowReasons,
    ShowUris,
    SortBy,
    Toggle,
    TurnPage,
)
from .snapshot import Details, Reasons, RowDetails, Snapshot, Uris
from .table import PagedTable, RowSlot
from .widgets import DetailsWidgets, EndpointStrip, PanelWidgets, owned

Post = Callable[[Intent], None]
FilterField = Literal["status", "endpoint", "text"]


def _filter(field: FilterField, change: Any) -> Intent:
    return Filter(field, change["new"] or "")


def _click(make: Callable[[], Intent], _button: Any) -> Intent:
    return make()


class PanelView:
    """The widgets of one panel (``root`` is what is displayed) and the drawing of snapshots.

    Args:
        page_size: rows per page (the table's fixed number of slots).
        strip: show the endpoint strip.
    """

    def __init__(self, page_size: int, *, strip: bool):
        self._post: Post | None = None
        self._local = threading.local()
        self._uris = ""
        self.table = PagedTable(page_size, self._on_toggle, self._on_open, self._on_sort)
        self.details = DetailsWidgets()
        self.strip = EndpointStrip() if strip else None
        self.w = PanelWidgets(self.table, self.strip)
        self.root = self.w.root
        w = self.w
        filters: dict[FilterField, W.Widget] = {"status": w.status_filter, "endpoint": w.endpoint_filter,
                                                "text": w.text_filter}
        for field, widget in filters.items():
            widget.observe(self._user(functools.partial(_filter, field)), names="value")
        w.auto.observe(self._user(lambda change: AutoRefresh(bool(change["new"]))), names="value")
        w.interval.observe(self._user(lambda change: PollInterval(float(change["new"]))), names="value")
        w.activity_toggle.observe(self._user(lambda change: ShowActivity(bool(change["new"]))), names="value")
        w.uri_text.observe(self._on_uri_edit, names="value")
        clicks: dict[str, Callable[[], Intent]] = {
            "prev": lambda: TurnPage(-1), "next": lambda: TurnPage(1), "select_shown": SelectShown,
            "clear": ClearSelection, "load": lambda: Load(w.var.value), "why": ShowReasons, "uris": ShowUris,
            "forget": Forget, "resubmit": Resubmit, "refresh_now": RefreshNow, "hide": HideDetails,
            "pause": lambda: ControlJob("pause"), "resume": lambda: ControlJob("resume"),
            "cancel": lambda: ControlJob("cancel"),
            "dismiss": DismissNotices}
        for name, intent in clicks.items():
            getattr(w, name).on_click(self._user(functools.partial(_click, intent)))

    def connect(self, post: Post) -> None:
        """Send the user's intents to ``post`` from now on (none are sent before)."""
        self._post = post

    # --- events (the kernel's main thread) ---------------------------------------------------

    @property
    def _drawing(self) -> bool:
        return getattr(self._local, "drawing", False)

    def _send(self, intent: Intent) -> None:
        post = self._post
        if post is not None and not self._drawing:
            post(intent)

    def _user(self, make: Callable[[Any], Intent]) -> Callable[[Any], None]:
        """An event handler that posts ``make(event)``."""
        return lambda event: self._send(make(event))

    def _on_toggle(self, slot: RowSlot, value: bool) -> None:
        if slot.inference_id is not None:
            self._send(Toggle(slot.inference_id, value))

    def _on_open(self, slot: RowSlot) -> None:
        if slot.inference_id is not None:
            self._send(OpenDetails(slot.inference_id))

    def _on_sort(self, key: str) -> None:
        self._send(SortBy(key))

    def _on_uri_edit(self, change: Any) -> None:
        """The URI box is for copying: edits are undone."""
        if not self._drawing and change["new"] != self._uris:
            self.w.uri_text.value = self._uris

    # --- drawing (the panel's loop) ----------------------------------------------------------

    @contextmanager
    def _as_drawing(self) -> Iterator[None]:
        self._local.drawing = True
        try:
            yield
        finally:
            self._local.drawing = False

    def draw(self, snapshot: Snapshot) -> None:
        """Show ``snapshot``: plain trait assignments, only changed values are sent."""
        s, w = snapshot, self.w
        with self._as_drawing():
            self.table.show(s.rows, s.selected)
            self.table.show_sort(s.sort, s.descending)
            w.show_pager(s.page, s.pages, s.matching, s.total)
            w.show_counts(dict(s.counts))
            w.show_endpoints(s.endpoints, s.endpoint)
            w.show_progress(s.progress)
            w.show_refresh(s.refresh, s.now)
            w.show_notices(s.notices)
            w.activity_toggle.value = s.activity is not None
            w.show_activity(s.activity)
            if s.auto_refresh is not None:
                w.auto.value = s.auto_refresh
            w.interval.value = s.poll_interval
            w.show_selection(len(s.selected), s.hidden, s.forget_armed)
            if self.strip is not None and s.strip is not None:
                self.strip.show(s.strip)
            self._draw_details(s.details)
            w.message.value = s.message
            w.set_busy(s.busy)

    def _draw_details(self, details: Details) -> None:
        w = self.w
        if isinstance(details, RowDetails):
            self.details.show(details)
            w.show_details(self.details.box)
        elif isinstance(details, Reasons):
            w.reasons.value = details.html
            w.show_details(w.reasons)
        elif isinstance(details, Uris):
            self._uris = details.text
            w.uri_text.value = details.text
            w.show_details(w.uri_text)
        else:
            w.show_details()

    def say(self, message: str) -> None:
        """One line in the status line, outside a snapshot (when one could not be made)."""
        self.w.message.value = message

    # --- lifetime ----------------------------------------------------------------------------

    def widgets(self) -> list[W.Widget]:
        """Every widget this view made (incl. implicit layouts and styles)."""
        return owned(*self.w.owned(), *self.details.widgets())

    def close(self) -> None:
        self._post = None
        for widget in self.widgets():
            widget.close()
