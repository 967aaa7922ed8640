"""The panel's widgets other than the table, and how header, notices, pager, selection, details
(with the output's image, audio or video in ipywidgets' own Image/Audio/Video widgets), the
activity charts and the endpoint strip are drawn.

These classes only make widgets and assign their values; ``view.py`` decides what to draw (from a
snapshot) and wires the events. Every ``show_*`` assigns plain traits, so an unchanged line sends
nothing. Text from outside goes into ``Label`` widgets (text) or arrives escaped in HTML values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W

from ...display.previews import Media
from ...display.text import BORDER_COLOUR
from ...records import Status
from ..notices import Notice, notices_html
from .rows import STATUS_FILTERS, counts_badges, local_time
from .snapshot import Progress, RefreshLine, RowDetails
from .table import PANEL_CSS, PagedTable


def _px(width: str) -> W.Layout:
    return W.Layout(width=width)


def owned(*roots: Any) -> list[W.Widget]:
    """Every widget reachable from ``roots`` (children, implicit layouts and styles), for close()."""
    found: dict[int, W.Widget] = {}

    def walk(widget: Any) -> None:
        if isinstance(widget, W.Widget) and id(widget) not in found:
            found[id(widget)] = widget
            for attr in ("layout", "style"):
                walk(getattr(widget, attr, None))
            for child in getattr(widget, "children", ()):
                walk(child)

    for root in roots:
        walk(root)
    return list(found.values())


class DetailsWidgets:
    """One row's details: its fields, then its output preview (an image, audio or video output in
    its own widget, whose bytes go to the browser as one binary buffer) and, for some rows, its
    log lines."""

    def __init__(self) -> None:
        self.fields = W.HTML(layout=W.Layout(overflow="auto", max_width="100%"))
        self.preview_title = W.HTML("<b>Output preview</b>")
        self.preview = W.HTML(_dom_classes=("sm-async-preview",), layout=W.Layout(max_width="100%"))
        media = W.Layout(max_width="100%", max_height="420px", object_fit="contain", width="auto", height="auto",
                         align_self="flex-start")  # its own size, not stretched across the details
        self.image = W.Image(layout=media, _dom_classes=("sm-async-media",))
        self.audio = W.Audio(autoplay=False, loop=False, controls=True, _dom_classes=("sm-async-media",))
        self.video = W.Video(autoplay=False, loop=False, controls=True, layout=media, _dom_classes=("sm-async-media",))
        self.logs_title = W.HTML("<b>Log lines</b>")
        self.logs = W.HTML(_dom_classes=("sm-async-logs",))
        self.box = W.VBox([self.fields, self.preview_title, self.preview], _dom_classes=("sm-async-row-details",))

    def _media(self, media: Media | None) -> W.Widget | None:
        """The widget showing ``media`` (its bytes assigned only when they changed); the others let
        go of what they held."""
        players: dict[str, W.Widget] = {"image": self.image, "audio": self.audio, "video": self.video}
        for family, widget in players.items():
            if media is not None and family == media.family:
                with widget.hold_sync():  # format and bytes in one message
                    widget.format = media.format
                    widget.value = media.data
            elif widget.value:
                widget.value = b""
        return players[media.family] if media is not None else None

    def show(self, details: RowDetails) -> None:
        self.fields.value = details.fields
        self.preview.value = details.preview
        player = self._media(details.media)
        if details.logs is not None:
            self.logs.value = details.logs
        self.box.children = (self.fields, self.preview_title, self.preview, *((player,) if player else ()),
                             *((self.logs_title, self.logs) if details.logs is not None else ()))

    def widgets(self) -> list[W.Widget]:
        return owned(self.box, self.image, self.audio, self.video, self.logs_title, self.logs)


class EndpointStrip:
    """The endpoint strip: one line per endpoint with unfinished rows, hidden when there is none."""

    def __init__(self) -> None:
        self.html = W.HTML(_dom_classes=("sm-async-endpoints",),
                           layout=W.Layout(border_left=f"3px solid {BORDER_COLOUR}", padding="0 0 0 8px",
                                           display="none"))

    def show(self, lines: Sequence[str]) -> None:
        self.html.value = "".join(lines)
        self.html.layout.display = "" if lines else "none"


class PanelWidgets:
    """Header (counts, progress, refresh line, notices, the endpoint strip), filters, pager,
    selection, actions, status line and details area, laid out around ``table`` in ``root``."""

    def __init__(self, table: PagedTable, strip: EndpointStrip | None = None):
        self.css = W.HTML(f"<style>{PANEL_CSS}</style>", layout=W.Layout(display="none"))
        self.title = W.HTML("<b>SageMaker async invocations</b>")
        self.counts = W.HTML()
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=_px("200px"))
        self.progress_text = W.Label()
        self.refreshed = W.Label(layout=W.Layout(margin="0 16px 0 0"))
        self.auto = W.Checkbox(value=False, description="Auto-refresh", indent=False, layout=_px("110px"))
        self.interval = W.BoundedFloatText(value=1.0, min=0.05, max=3600, step=1,
                                           description="every ≤ s", style={"description_width": "auto"},
                                           layout=_px("130px"), tooltip="Longest pause between refreshes")
        self.refresh_now = W.Button(description="Refresh now", icon="refresh", layout=_px("120px"))
        self.activity_toggle = W.ToggleButton(value=False, description="Activity", icon="bar-chart",
                                              layout=_px("100px"), _dom_classes=("sm-async-activity-toggle",),
                                              tooltip="Charts of the selected batch or endpoint beside the table")
        self.notices = W.HTML(_dom_classes=("sm-async-notices",))
        self.dismiss = W.Button(description="Dismiss", layout=W.Layout(width="80px", display="none"),
                                tooltip="Clear the 'finished' notices")
        self.activity = W.HTML(_dom_classes=("sm-async-activity",),
                               layout=W.Layout(flex="0 1 460px", min_width="280px", margin="0 0 0 12px",
                                               display="none"))
        self.status_filter = W.Dropdown(options=STATUS_FILTERS, value="", layout=_px("130px"))
        self.endpoint_filter = W.Dropdown(options=[("All endpoints", "")], value="", layout=_px("180px"))
        self.text_filter = W.Text(placeholder="label, id or batch contains…", layout=_px("220px"))
        self.prev = W.Button(description="Prev", icon="chevron-left", layout=_px("80px"))
        self.page_text = W.Label()
        self.next = W.Button(description="Next", icon="chevron-right", layout=_px("80px"))
        self.selection_text = W.Label()
        self.select_shown = W.Button(description="Select all shown", layout=_px("130px"))
        self.clear = W.Button(description="Clear selection", layout=_px("120px"))
        self.var = W.Text(value="df", description="into", style={"description_width": "auto"}, layout=_px("120px"),
                          tooltip="Name of the variable Load assigns the DataFrame to")
        self.load = W.Button(description="Load", button_style="primary", icon="download",
                             tooltip="Load the selected completed outputs into a DataFrame variable")
        self.why = W.Button(description="Failure reason", tooltip="Show why the selected invocations failed")
        self.uris = W.Button(description="S3 URIs", tooltip="Show input/output/failure URIs to copy")
        self.forget = W.Button(description="Forget", tooltip="Stop tracking the selection (S3 objects stay)")
        self.resubmit = W.Button(description="Resubmit", tooltip="Send failed, expired or errored ones again")
        self.pause = W.Button(description="Pause", icon="pause", tooltip="Pause the selected rows' jobs: queued "
                              "requests wait, what is on the endpoint runs on")
        self.resume = W.Button(description="Resume", icon="play", tooltip="Resume the selected rows' paused jobs")
        self.cancel = W.Button(description="Cancel", icon="stop", tooltip="Cancel the selected rows' jobs: queued "
                               "requests are not sent")
        self.message = W.Label()
        self.reasons = W.HTML()
        self.uri_text = W.Textarea(rows=8, layout=W.Layout(width="95%"))
        self.hide = W.Button(description="Hide details", layout=_px("110px"))
        self.details = W.VBox([], _dom_classes=("sm-async-details",))
        row = W.Layout(align_items="center", flex_flow="row wrap")
        self.root = W.VBox([
            W.HBox([self.title, self.counts], layout=row),
            W.HBox([self.progress, self.progress_text], layout=row),
            W.HBox([self.refreshed, self.auto, self.interval, self.refresh_now, self.activity_toggle], layout=row),
            W.HBox([self.notices, self.dismiss], layout=W.Layout(align_items="flex-start")),
            *([strip.html] if strip is not None else []),
            W.HBox([self.status_filter, self.endpoint_filter, self.text_filter], layout=row),
            W.HBox([table.box, self.activity], layout=W.Layout(flex_flow="row wrap", align_items="flex-start",
                                                               width="100%")),
            W.HBox([self.prev, self.page_text, self.next], layout=row),
            W.HBox([self.selection_text, self.select_shown, self.clear], layout=row),
            W.HBox([self.var, self.load, self.why, self.uris, self.forget, self.resubmit, self.pause, self.resume,
                    self.cancel], layout=row),
            self.message, self.details, self.css], _dom_classes=("sm-async-panel",))  # CSS hooks
        self._extra = [table.box, *table.widgets()]

    # --- drawing -----------------------------------------------------------------------------

    def show_counts(self, counts: Mapping[Status, int]) -> None:
        self.counts.value = counts_badges(counts)

    def show_pager(self, page: int, pages: int, shown: int, total: int) -> None:
        self.page_text.value = (f"Page {page + 1} of {pages} · {shown:,} shown"
                                + (f" of {total:,}" if shown != total else ""))
        self.prev.disabled = page == 0
        self.next.disabled = page >= pages - 1

    def show_endpoints(self, endpoints: Sequence[str], chosen: str) -> None:
        """The endpoint filter's choices; the value is set only when they change (assigning the
        options resets it), so a choice the user just made is never overwritten."""
        options = (("All endpoints", ""), *((e, e) for e in endpoints))
        dropdown = self.endpoint_filter
        if tuple(dropdown.options) != options:
            dropdown.options = options
            dropdown.value = chosen if chosen in endpoints else ""

    def show_progress(self, progress: Progress) -> None:
        finished, total, unsuccessful, scope = (progress.finished, progress.total, progress.unsuccessful,
                                                progress.scope)
        bar = self.progress
        with bar.hold_sync():  # one message for max, value and colour
            bar.max = max(1, total)
            bar.value = finished
            if finished < total or not total:
                bar.bar_style = "warning" if unsuccessful else "info"
            else:
                bar.bar_style = "danger" if unsuccessful else "success"
        self.progress_text.value = (f"{finished:,} / {total:,} finished ({scope})"
                                    + (f" · {unsuccessful:,} unsuccessful" if unsuccessful else ""))

    def show_refresh(self, last: RefreshLine, now: float) -> None:
        if last.at is None:
            self.refreshed.value = "Not refreshed yet"
        else:
            self.refreshed.value = (f"Last refresh {local_time(last.at, now)} · {last.s3_requests} S3 "
                                    f"request(s) · {last.changed} changed")

    def show_notices(self, notices: Sequence[Notice]) -> None:
        self.notices.value = notices_html(notices)
        self.dismiss.layout.display = "" if any(n.level == "done" for n in notices) else "none"

    def show_activity(self, html: str | None) -> None:
        """The charts beside the table (below it when the output is too narrow for both)."""
        if html is not None:
            self.activity.value = html
        self.activity.layout.display = "none" if html is None else ""

    def show_selection(self, count: int, hidden: int, forget_armed: bool) -> None:
        text = f"{count:,} selected" if count else "Nothing selected: tick rows to act on them"
        if hidden:
            text += f" ({hidden:,} not shown by the filters)"
        self.selection_text.value = text
        with self.forget.hold_sync():
            self.forget.description = f"Confirm forget ({count})" if forget_armed else "Forget"
            self.forget.button_style = "danger" if forget_armed else ""

    def show_details(self, *children: W.Widget) -> None:
        self.details.children = (*children, self.hide) if children else ()

    def set_busy(self, busy: bool) -> None:
        for button in (self.load, self.resubmit, self.pause, self.resume, self.cancel, self.refresh_now):
            button.disabled = busy

    # --- lifetime ----------------------------------------------------------------------------

    def owned(self) -> list[W.Widget]:
        """Every widget made for this panel's frame and table (incl. implicit layouts and styles)."""
        return owned(self.root, *vars(self).values(), *self._extra)
