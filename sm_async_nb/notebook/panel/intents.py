"""What can happen to a panel, as plain values.

*Intents* go to the panel's one loop (``loop.py``), from the view (what the user did), from the
tracker (a refresh happened) and from the workers (an answer arrived); the state (``state.py``)
applies them in order. *Effects* are what the state asks the outside world to do (fetch a preview,
load a DataFrame, forget rows, start the tracker); ``workers.py`` carries them out and answers with
intents. Neither holds widgets or does I/O: they are the vocabulary between the parts.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

from ...display.activity import ActivityScope
from ...display.previews import Preview
from ...endpoints.status import EndpointStatus
from ...records import InvocationRecord

# --- what the user did (posted by the view, or by the panel's public methods) -------------------


@dataclass(frozen=True)
class Filter:
    """One filter edited: the status dropdown, the endpoint dropdown or the text box."""

    field: Literal["status", "endpoint", "text"]
    value: str


@dataclass(frozen=True)
class SortBy:
    key: str


@dataclass(frozen=True)
class TurnPage:
    step: int


@dataclass(frozen=True)
class Toggle:
    """A row's checkbox (the selection is kept by id, so it survives paging and filtering)."""

    inference_id: str
    selected: bool


@dataclass(frozen=True)
class Select:
    """Replace the selection (``panel.select``); ids no longer tracked are left out."""

    inference_ids: tuple[str, ...]


@dataclass(frozen=True)
class SelectShown:
    """Add every row passing the filters, on every page."""


@dataclass(frozen=True)
class ClearSelection:
    pass


@dataclass(frozen=True)
class OpenDetails:
    inference_id: str


@dataclass(frozen=True)
class HideDetails:
    pass


@dataclass(frozen=True)
class ShowReasons:
    pass


@dataclass(frozen=True)
class ShowUris:
    pass


@dataclass(frozen=True)
class Forget:
    """The first click arms it, a second one with the same selection forgets."""


@dataclass(frozen=True)
class Load:
    variable: str


@dataclass(frozen=True)
class Resubmit:
    pass


@dataclass(frozen=True)
class ControlJob:
    """Pause, resume or cancel the jobs of the selected rows' batches."""

    action: str  # "pause" | "resume" | "cancel"


@dataclass(frozen=True)
class RefreshNow:
    pass


@dataclass(frozen=True)
class AutoRefresh:
    on: bool


@dataclass(frozen=True)
class PollInterval:
    seconds: float


@dataclass(frozen=True)
class ShowActivity:
    """The Activity toggle: the charts beside the table, on or off."""

    on: bool


@dataclass(frozen=True)
class DismissNotices:
    """Clear the "batch finished" notices from the header."""


@dataclass(frozen=True)
class Redraw:
    """Read the journal again (``panel.refresh()``, the first snapshot)."""


# --- from the tracker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refreshed:
    """A tracker refresh ended; its error count then (a failed refresh is published too)."""

    errors: int
    last_error: str | None


# --- answers from the workers -------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewLoaded:
    key: Hashable
    preview: Preview | str  # a note (HTML) when the preview could not be made
    cache: bool  # False for a failure: the next opening tries again


@dataclass(frozen=True)
class LogsLoaded:
    key: Hashable
    html: str
    cache: bool


@dataclass(frozen=True)
class EndpointLoaded:
    name: str
    html: str
    status: EndpointStatus | None = None  # None: it could not be read


@dataclass(frozen=True)
class ActivityLoaded:
    key: Hashable
    html: str


@dataclass(frozen=True)
class ActionDone:
    """A slow action finished: its message, and the selection it leaves (None: unchanged)."""

    message: str
    select: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Forgotten:
    inference_ids: frozenset[str]
    count: int


@dataclass(frozen=True)
class Say:
    message: str


@dataclass(frozen=True)
class TrackerStopped:
    pass


Intent = (Filter | SortBy | TurnPage | Toggle | Select | SelectShown | ClearSelection | OpenDetails | HideDetails
          | ShowReasons | ShowUris | Forget | Load | Resubmit | ControlJob | RefreshNow | AutoRefresh | PollInterval
          | ShowActivity
          | DismissNotices | Redraw | Refreshed | PreviewLoaded | LogsLoaded | EndpointLoaded | ActivityLoaded
          | ActionDone | Forgotten | Say | TrackerStopped)


# --- effects: what the state asks the workers to do ---------------------------------------------


@dataclass(frozen=True)
class FetchPreview:
    key: Hashable
    record: InvocationRecord


@dataclass(frozen=True)
class FetchLogs:
    key: Hashable
    record: InvocationRecord


@dataclass(frozen=True)
class FetchEndpoint:
    name: str


@dataclass(frozen=True)
class FetchActivity:
    """Read the activity of ``scope`` (the charts), answered as ``ActivityLoaded(key, ...)``."""

    key: Hashable
    scope: ActivityScope
    now: float


@dataclass(frozen=True)
class LoadFrame:
    records: tuple[InvocationRecord, ...]
    variable: str


@dataclass(frozen=True)
class ResubmitRecords:
    records: tuple[InvocationRecord, ...]


@dataclass(frozen=True)
class ControlJobs:
    action: str
    batch_ids: tuple[str, ...]


@dataclass(frozen=True)
class PollNow:
    pass


@dataclass(frozen=True)
class DeleteRows:
    inference_ids: frozenset[str]


@dataclass(frozen=True)
class StartTracker:
    pass


@dataclass(frozen=True)
class StopTracker:
    pass


@dataclass(frozen=True)
class SetPollInterval:
    seconds: float


Effect = (FetchPreview | FetchLogs | FetchEndpoint | FetchActivity | LoadFrame | ResubmitRecords | ControlJobs | PollNow
          | DeleteRows
          | StartTracker | StopTracker | SetPollInterval)
