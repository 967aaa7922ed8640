"""What the view draws: one immutable ``Snapshot`` per loop turn, computed by the state from the
journal and handed to the view, which only assigns it to widget traits (dask's progress model and
view: ``progressbar.py`` draws what the loop hands it). Text from outside is already escaped in
the HTML fields and plain in the text fields (``RowView``, ``Uris``)."""

from __future__ import annotations

from dataclasses import dataclass

from ...display.previews import Media
from ...records import Status
from ..notices import Notice
from .rows import RowView


@dataclass(frozen=True)
class Progress:
    """The progress bar: the selected batch's when the selection is inside one, else what is shown."""

    finished: int
    total: int
    unsuccessful: int
    scope: str


@dataclass(frozen=True)
class RefreshLine:
    """The tracker's last refresh (``at`` None: none yet)."""

    at: float | None
    s3_requests: int
    changed: int


@dataclass(frozen=True)
class RowDetails:
    """One row's details: fields, output preview and (None: no log section) log lines, as HTML,
    and the output itself when it is an image, audio or video within the preview limit."""

    inference_id: str
    fields: str
    preview: str
    logs: str | None
    media: Media | None = None


@dataclass(frozen=True)
class Reasons:
    """The selection's failure reasons (HTML)."""

    html: str


@dataclass(frozen=True)
class Uris:
    """The selection's S3 URIs (plain text, for a read-only text box)."""

    text: str


Details = RowDetails | Reasons | Uris | None


@dataclass(frozen=True)
class Snapshot:
    """Everything the panel shows at one moment."""

    now: float
    rows: tuple[RowView, ...]          # the page, in display order
    selected: frozenset[str]           # the selection, by inference id (also rows on other pages)
    sort: str
    descending: bool
    page: int
    pages: int
    matching: int                      # rows passing the filters
    counts: tuple[tuple[Status, int], ...]  # every tracked row of this origin, per status
    endpoints: tuple[str, ...]         # the endpoint filter's choices
    endpoint: str                      # the endpoint filtered by ("" all)
    progress: Progress
    refresh: RefreshLine
    notices: tuple[Notice, ...]        # batches that finished, warnings, tracker problems, the last refresh's error
    auto_refresh: bool | None          # the tracker polls (None: stopping, leave the box as the user set it)
    poll_interval: float
    hidden: int                        # selected rows the filters hide
    forget_armed: bool                 # "Forget" waits for its confirming click
    strip: tuple[str, ...] | None      # one HTML line per endpoint with unfinished rows (None: no strip)
    activity: str | None               # the activity charts (HTML with SVG); None: the view is off
    details: Details
    message: str
    busy: bool                         # a slow action runs

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)
