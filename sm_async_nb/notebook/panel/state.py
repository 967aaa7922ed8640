"""The panel's state: what the user asked for (the query, the selection, the details row, the
activity view), what the panel was told (its message, answers from the workers, notices) and the
snapshot it last computed.

Plain data and the rules that change it; no widgets, no threads, no locks. One loop (``loop.py``)
owns a state: it applies intents in order with ``apply(intent, now)``, takes the effects they
asked for with ``take_effects()`` (fetches, slow actions, a forget, the tracker: carried out by
``workers.py``, whose answers come back as intents), and asks ``snapshot(now)`` for the immutable
``Snapshot`` the view draws. The journal is read through ``JournalReader``: one page of rows and
a few counts per snapshot, whatever the journal holds.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

from ...display.activity import ActivityScope
from ...display.previews import Preview
from ...display.text import note
from ...endpoints.status import EndpointStatus
from ...journal.activity import Scope
from ...records import InvocationRecord, Status
from ...tracking.tracker import RefreshStats
from .. import notices
from ..notices import Notice
from . import actions
from .details import LOADING_LOGS, LOADING_PREVIEW, LOGGED, NO_PREVIEW, fields_html, no_output_html
from .intents import (
    ActionDone,
    ActivityLoaded,
    AutoRefresh,
    ClearSelection,
    ControlJob,
    ControlJobs,
    DeleteRows,
    DismissNotices,
    Effect,
    EndpointLoaded,
    FetchActivity,
    FetchEndpoint,
    FetchLogs,
    FetchPreview,
    Filter,
    Forget,
    Forgotten,
    HideDetails,
    Intent,
    Load,
    LoadFrame,
    LogsLoaded,
    OpenDetails,
    PollInterval,
    PollNow,
    PreviewLoaded,
    Redraw,
    Refreshed,
    RefreshNow,
    Resubmit,
    ResubmitRecords,
    Say,
    Select,
    SelectShown,
    SetPollInterval,
    ShowActivity,
    ShowReasons,
    ShowUris,
    SortBy,
    StartTracker,
    StopTracker,
    Toggle,
    TrackerStopped,
    TurnPage,
)
from .query import JournalReader, PageData, Query
from .rows import RowView
from .snapshot import Details, Progress, Reasons, RefreshLine, RowDetails, Snapshot, Uris
from .strip import checking_html

CACHE_SIZE = 32                   # previews and log answers kept (LRU)
CACHE_BYTES = 16 * 1024 * 1024    # ... and at most this many bytes of them (media previews are up to 2 MiB)
ACTIVITY_EVERY = 5.0              # least seconds between two reads of the activity while the journal moves
ACTIVITY_STALE = 30.0             # read again after this long while rows are unfinished (time moves on)
FINISHED_NOTICES = 3              # "batch finished" notices kept in the header
SELECT_FIRST = "Select one or more rows first (tick their boxes)."
LOADING_ACTIVITY = note("Reading the activity…")
V = TypeVar("V")


class TrackerView(Protocol):
    """What the state reads of the tracker (never calls it: starting and stopping are effects)."""

    @property
    def stats(self) -> RefreshStats: ...

    @property
    def problem(self) -> str | None: ...

    @property
    def notices(self) -> Mapping[str, str]: ...

    @property
    def running(self) -> bool: ...


class Lru(Generic[V]):
    """A small least-recently-used map of answers (previews, log lines), bounded by count and by
    the bytes its values hold (``weight``)."""

    def __init__(self, size: int = CACHE_SIZE, max_bytes: int = CACHE_BYTES,
                 weight: Callable[[V], int] = lambda value: 0):
        self.size, self.max_bytes, self._weight = size, max_bytes, weight
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._bytes = 0

    def get(self, key: Hashable) -> V | None:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return None

    def put(self, key: Hashable, value: V) -> None:
        if key in self._items:
            self._bytes -= self._weight(self._items.pop(key))
        self._items[key] = value
        self._bytes += self._weight(value)
        while len(self._items) > self.size or (self._bytes > self.max_bytes and len(self._items) > 1):
            self._bytes -= self._weight(self._items.popitem(last=False)[1])

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)


def _preview_weight(value: Preview | str) -> int:
    return value.weight if isinstance(value, Preview) else len(value)


@dataclass(frozen=True)
class OpenRow:
    """The row whose details are open, and what its preview and log sections show for its current
    keys (a key changes when the row finishes: then the answers are looked up again)."""

    record: InvocationRecord
    preview_key: Hashable
    preview: Preview | str  # a note while loading, for rows without an output, or when it failed
    logs_key: Hashable
    logs: str | None  # None: no log section for this row


class PanelState:
    """One panel's state (see the module docstring). Not thread-safe by design: one loop owns it.

    Args:
        reader: the journal reads.
        tracker: what the snapshot shows of the tracker (stats, problem, notices, running).
        poll_interval: the current longest pause between refreshes (a setting the user may change).
        previews: completed rows' details fetch a preview of their output.
        logs: pending, failed and expired rows' details fetch their log lines.
        strip_interval: the least time between two status fetches of one endpoint; None: no strip.
    """

    def __init__(self, reader: JournalReader, tracker: TrackerView, *, poll_interval: Callable[[], float],
                 previews: bool = True, logs: bool = False, strip_interval: float | None = None,
                 job_problem: Callable[[], str | None] = lambda: None):
        self.reader = reader
        self._job_problem = job_problem  # the job thread's last problem (a job it paused, and why)
        self._tracker, self._poll_interval = tracker, poll_interval
        self._previews_enabled, self._logs_enabled, self._strip_interval = previews, logs, strip_interval
        self.query = Query()
        self.selected: frozenset[str] = frozenset()
        self.details: OpenRow | Reasons | Uris | None = None
        self.forget_armed: frozenset[str] | None = None
        self.message = ""
        self.busy = False                       # a slow action runs (a second one is refused)
        self.stopping = False                   # the tracker is being stopped
        self.refresh_error: str | None = None   # the last refresh's error, while it is the last one
        self.errors_seen = tracker.stats.errors
        self.last: Snapshot | None = None
        self.previews: Lru[Preview | str] = Lru(weight=_preview_weight)
        self.logs: Lru[str] = Lru()
        self.strip_lines: dict[str, str] = {}   # endpoint -> its line (status or error)
        self.strip_asked: dict[str, float] = {}  # endpoint -> when its last fetch was asked for
        self.endpoint_statuses: dict[str, EndpointStatus] = {}  # endpoint -> its last status read
        self.activity_on = False
        self.activity_html: str | None = None
        self._activity_asked: tuple[Hashable, float] | None = None  # (key, when) of the last read asked for
        self._activity_dirty = False            # an answer that changes the charts arrived (endpoint samples)
        self.finished: list[Notice] = []        # "batch finished" notices, newest first
        self._open_batches: frozenset[str] | None = None
        self._effects: list[Effect] = []
        self._selection_version = 0
        self._counts: dict[Status, int] | None = None
        self._memo: dict[str, tuple[Hashable, Any]] = {}
        self._batch_names: dict[str, str] = {}

    # --- intents -----------------------------------------------------------------------------

    def apply(self, intent: Intent, now: float) -> None:
        """Change the state as ``intent`` says; effects it needs are queued (``take_effects``)."""
        match intent:
            case Filter("status", value):
                self.query = replace(self.query, status=value, page=0)
            case Filter("endpoint", value):
                self.query = replace(self.query, endpoint=value, page=0)
            case Filter("text", value):
                self.query = replace(self.query, text=value, page=0)
            case SortBy(key):
                self.query = self.query.sorted_by(key)
            case TurnPage(step):
                self.query = replace(self.query, page=self.query.page + step)
            case Toggle(inference_id, True):
                self._select(self.selected | {inference_id})
            case Toggle(inference_id, False):
                self._select(self.selected - {inference_id})
            case Select(inference_ids):
                self._select(frozenset(self.reader.existing(inference_ids)))
            case SelectShown():
                self._select(self.selected | set(self.reader.matching_ids(self.query)))
            case ClearSelection():
                self._select(frozenset())
            case OpenDetails(inference_id):
                self._open_details(inference_id)
            case HideDetails():
                self.details = None
            case ShowReasons():
                self._show_reasons()
            case ShowUris():
                self._show_uris()
            case Forget():
                self._forget()
            case Forgotten(inference_ids, count):
                self._select(self.selected - inference_ids)
                self.message = f"Forgot {count} invocation(s); their S3 objects are untouched."
            case Load(variable):
                self._load(variable)
            case Resubmit():
                records = self._selection_or_say()
                if records:
                    self._start(f"Resubmitting {len(records)} invocation(s)…", ResubmitRecords(tuple(records)))
            case ControlJob(action):
                records = self._selection_or_say()
                batch_ids = tuple(dict.fromkeys(r.batch_id for r in records if r.batch_id is not None))
                if records and not batch_ids:
                    self.message = f"Select rows of a batch sent as a job to {action} it."
                elif batch_ids:
                    self._start(f"{action.capitalize()} {len(batch_ids)} batch(es)…", ControlJobs(action, batch_ids))
            case RefreshNow():
                self._start("Refreshing…", PollNow())
            case ActionDone(message, select):
                self.busy, self.message = False, message
                if select is not None:
                    self._select(frozenset(select))
            case AutoRefresh(True):
                self._effects.append(StartTracker())
                self.message = f"Auto-refresh on: polling at least every {self._poll_interval():g} s."
            case AutoRefresh(False):
                self.stopping, self.message = True, "Auto-refresh off."
                self._effects.append(StopTracker())
            case TrackerStopped():
                self.stopping = False
            case PollInterval(seconds):
                self._effects.append(SetPollInterval(seconds))
            case Refreshed(errors, last_error):
                self.refresh_error = last_error if errors != self.errors_seen else None
                self.errors_seen = errors
            case PreviewLoaded(key, preview, cache):
                if cache:
                    self.previews.put(key, preview)
                if isinstance(self.details, OpenRow) and self.details.preview_key == key:
                    self.details = replace(self.details, preview=preview)
            case LogsLoaded(key, html, cache):
                if cache:
                    self.logs.put(key, html)
                if isinstance(self.details, OpenRow) and self.details.logs_key == key and self.details.logs is not None:
                    self.details = replace(self.details, logs=html)
            case EndpointLoaded(name, html, status):
                self.strip_lines[name] = html
                if status is not None:
                    self.endpoint_statuses[name] = status
                    self._activity_dirty = True  # a new point of the endpoint's history
            case ShowActivity(on):
                self.activity_on = on
                if not on:
                    self.activity_html, self._activity_asked = None, None
            case ActivityLoaded(key, html):
                if self._activity_asked is not None and _same_scope(key, self._activity_asked[0]):
                    self.activity_html = html
            case DismissNotices():
                self.finished = []
            case Say(message):
                self.message = message
            case Redraw():
                pass

    def take_effects(self) -> list[Effect]:
        """The effects queued since the last call, in order."""
        effects, self._effects = self._effects, []
        return effects

    def _select(self, inference_ids: frozenset[str]) -> None:
        if inference_ids != self.selected:
            self.selected = inference_ids
            self._selection_version += 1

    def _selection_or_say(self) -> list[InvocationRecord]:
        records = self.reader.records(self.selected)
        if not records:
            self.message = SELECT_FIRST
        return records

    def _start(self, busy_message: str, effect: Effect) -> None:
        """A slow action: one at a time; its ``ActionDone`` ends it."""
        if self.busy:
            self.message = "Still working on the previous action…"
            return
        self.busy, self.message = True, busy_message
        self._effects.append(effect)

    def _load(self, variable: str) -> None:
        try:
            name = actions.check_variable_name(variable)
        except ValueError as exc:
            self.message = str(exc)
            return
        records = self._selection_or_say()
        if records:
            self._start(f"Loading {len(records)} output(s) into {name}…", LoadFrame(tuple(records), name))

    def _forget(self) -> None:
        records = self._selection_or_say()
        if not records:
            return
        ids = frozenset(r.inference_id for r in records)
        if self.forget_armed != ids:
            self.forget_armed = ids
            self.message = f"Forget {len(ids)} invocation(s)? Their S3 objects stay. Click again to confirm."
            return
        self.forget_armed = None
        self._effects.append(DeleteRows(ids))

    def _show_reasons(self) -> None:
        records = self._selection_or_say()
        if not records:
            return
        html = actions.failure_html(records)
        if not html:
            self.details = None
            self.message = f"No failure reason: the selection is {actions.status_summary(records)}."
            return
        self.details, self.message = Reasons(html), "Failure reasons below."

    def _show_uris(self) -> None:
        records = self._selection_or_say()
        if records:
            self.details = Uris(actions.uris_text(records))
            self.message = f"S3 URIs of {len(records)} invocation(s) below: select and copy them."

    # --- the details row ---------------------------------------------------------------------

    def _open_details(self, inference_id: str) -> None:
        record = self.reader.get(inference_id)
        if record is None:
            self.message = f"{inference_id} is no longer tracked."
            return
        self.details = self._open_row(record, None)
        self.message = f"Details of {record.label or record.inference_id} below."

    def _open_row(self, record: InvocationRecord, shown: OpenRow | None) -> OpenRow:
        """The details of ``record``; answers for keys ``shown`` already has are kept, the others
        come from the cache or are fetched (each key is asked for once)."""
        iid = record.inference_id
        preview_key = (iid, record.output_location, record.finished_at)
        logs_key = (iid, record.status, record.finished_at)
        if shown is not None and shown.preview_key == preview_key:
            preview = shown.preview
        else:
            preview = self._preview(record, preview_key)
        logs: str | None = None
        if self._logs_enabled and record.status in LOGGED:
            logs = shown.logs if shown is not None and shown.logs_key == logs_key and shown.logs is not None \
                else self._logs(record, logs_key)
        return OpenRow(record, preview_key, preview, logs_key, logs)

    def _preview(self, record: InvocationRecord, key: Hashable) -> Preview | str:
        if record.status is not Status.COMPLETED:
            return no_output_html(record.status)
        if not self._previews_enabled:
            return NO_PREVIEW
        found = self.previews.get(key)
        if found is None:
            self._effects.append(FetchPreview(key, record))
        return found or LOADING_PREVIEW

    def _logs(self, record: InvocationRecord, key: Hashable) -> str:
        found = self.logs.get(key)
        if found is None:
            self._effects.append(FetchLogs(key, record))
        return found or LOADING_LOGS

    # --- the snapshot ------------------------------------------------------------------------

    def snapshot(self, now: float) -> Snapshot:
        """Read the journal and compute what the view shows now; remembered as ``last``."""
        data = self.reader.read(self.query, now)
        self.query = replace(self.query, page=data.page)
        moved = self._counts != data.counts
        if self._counts is not None and moved and self.selected:
            self._select(self.selected & frozenset(self.reader.existing(self.selected)))  # forgotten elsewhere
        if moved or self._open_batches is None:
            self._watch_batches(now)
        self._counts = data.counts
        if self.forget_armed is not None and self.forget_armed != self.selected:
            self.forget_armed = None  # the selection changed since the first click
        q, stats = self.query, self._tracker.stats
        counts = tuple((s, data.counts[s]) for s in Status if s in data.counts)
        hidden = self._memo_get("hidden", (self._selection_version, q.status, q.endpoint, q.text, counts),
                                lambda: self.reader.hidden(q, self.selected))
        strip = self._strip(now)
        snapshot = Snapshot(
            now=now, rows=tuple(RowView.of(r, now) for r in data.rows), selected=self.selected,
            sort=q.sort, descending=q.descending, page=data.page, pages=data.pages, matching=data.matching,
            counts=counts, endpoints=tuple(self.reader.endpoints(data.counts)), endpoint=q.endpoint,
            progress=self._progress(data), refresh=RefreshLine(stats.at, stats.s3_requests, stats.changed),
            notices=self._notices(now, counts), auto_refresh=None if self.stopping else self._tracker.running,
            poll_interval=self._poll_interval(), hidden=hidden, forget_armed=self.forget_armed is not None,
            strip=strip, activity=self._activity(now, counts, data), details=self._details(data, now),
            message=self.message, busy=self.busy)
        self.last = snapshot
        return snapshot

    # --- notices -----------------------------------------------------------------------------

    def _watch_batches(self, now: float) -> None:
        """A batch that had an unfinished part and has none now finished (whichever way its last
        part ended: the tracker, an error, a cancel): a notice in the header."""
        open_now = self.reader.unfinished_batches()
        if self._open_batches is not None:
            for batch_id in sorted(self._open_batches - open_now):
                counts = self.reader.batch_counts(batch_id)
                if counts:  # not forgotten
                    self.finished.insert(0, notices.batch_finished(self._batch_name(batch_id), counts, now))
            del self.finished[FINISHED_NOTICES:]
        self._open_batches = open_now

    def _notices(self, now: float, counts: tuple[tuple[Status, int], ...]) -> tuple[Notice, ...]:
        """Finished batches, endpoints at 0 instances with work waiting, requests about to expire, and
        the tracker's problems and notices."""
        tracker = self._tracker
        found = list(self.finished)
        for name in self._memo_get("unfinished_endpoints", counts, self.reader.unfinished_endpoints):
            status = self.endpoint_statuses.get(name)
            alert = notices.zero_instances(status) if status is not None else None
            if alert is not None:
                found.append(alert)
        soon, first = self._memo_get("expiring", (counts, int(now // 10)),
                                     lambda: self.reader.expiring(now, notices.EXPIRING_WITHIN))
        alert = notices.expiring(soon, None if first is None else first - now)
        if alert is not None:
            found.append(alert)
        found += [Notice("warn", text) for text in (tracker.problem, self._job_problem()) if text]
        found += [Notice("warn", text) for text in tracker.notices.values()]
        if self.refresh_error:
            found.append(Notice("warn", f"Last refresh failed: {self.refresh_error}"))
        return tuple(found)

    # --- the activity view -------------------------------------------------------------------

    def _activity_scope(self) -> ActivityScope:
        """The selected batch; else the endpoint filtered by, or the one the selection is on; else
        everything (with the endpoint's line when there is only one endpoint)."""
        origin = self.reader.origin
        batches = self._memo_get("batches", self._selection_version, lambda: self.reader.batches(self.selected))
        batch_id = next(iter(batches)) if len(batches) == 1 else None
        if batch_id is not None:
            record = self.reader.batch(batch_id)
            return ActivityScope(f"batch {self._batch_name(batch_id)}", Scope(origin, batch_id=batch_id),
                                 record.endpoint_name if record is not None else None)
        endpoint = self.query.endpoint or None
        if endpoint is None:
            chosen = self._memo_get("selected_endpoints", self._selection_version,
                                    lambda: self.reader.endpoints_of(self.selected))
            endpoint = next(iter(chosen)) if len(chosen) == 1 else None
        if endpoint is not None:
            return ActivityScope(f"endpoint {endpoint}", Scope(origin, endpoint=endpoint), endpoint)
        known = self.reader.endpoints(self._counts or {})
        return ActivityScope("everything tracked", Scope(origin), known[0] if len(known) == 1 else None)

    def _activity(self, now: float, counts: tuple[tuple[Status, int], ...], data: PageData) -> str | None:
        """The charts, read again (on a worker) when the scope changes, when the journal moved (at
        most every ACTIVITY_EVERY s), when the endpoint's history grew, or every ACTIVITY_STALE s
        while rows are unfinished."""
        if not self.activity_on:
            return None
        scope = self._activity_scope()
        key = (scope, counts)
        asked = self._activity_asked
        unfinished = any(n for s, n in counts if not s.finished)
        if asked is None or not _same_scope(key, asked[0]):
            due, self.activity_html = True, None
        else:
            age = now - asked[1]
            due = ((key != asked[0] or self._activity_dirty) and age >= ACTIVITY_EVERY) or (
                unfinished and age >= ACTIVITY_STALE)
        if due:
            self._activity_asked, self._activity_dirty = (key, now), False
            self._effects.append(FetchActivity(key, scope, now))
        return self.activity_html or LOADING_ACTIVITY

    def _memo_get(self, name: str, key: Hashable, compute: Callable[[], Any]) -> Any:
        """Selection-derived values (its batch, how many the filters hide) are computed once per
        selection, filter and journal state, not on every snapshot."""
        found = self._memo.get(name)
        if found is None or found[0] != key:
            found = (key, compute())
            self._memo[name] = found
        return found[1]

    def _progress(self, data: PageData) -> Progress:
        """Progress of the selected batch when the selection is inside one, else of what is shown."""
        batches = self._memo_get("batches", self._selection_version, lambda: self.reader.batches(self.selected))
        batch_id = next(iter(batches)) if len(batches) == 1 else None
        if batch_id is None:
            return Progress(data.finished, data.matching, data.unsuccessful, "shown")
        counts = tuple(sorted(data.counts.items()))  # a batch's counts move only when these do
        finished, total, unsuccessful = self._memo_get("progress", (batch_id, counts),
                                                       lambda: self.reader.batch_progress(batch_id))
        return Progress(finished, total, unsuccessful, f"batch {self._batch_name(batch_id)}")

    def _batch_name(self, batch_id: str) -> str:
        if batch_id not in self._batch_names:
            record = self.reader.batch(batch_id)
            self._batch_names[batch_id] = (record.label if record else None) or batch_id
        return self._batch_names[batch_id]

    def _strip(self, now: float) -> tuple[str, ...] | None:
        """The strip's lines for the endpoints with unfinished rows; a fetch for each one due."""
        if self._strip_interval is None:
            return None
        names = self.reader.unfinished_endpoints()
        for name in names:
            if now - self.strip_asked.get(name, -math.inf) >= self._strip_interval:
                self.strip_asked[name] = now
                self._effects.append(FetchEndpoint(name))
        return tuple(self.strip_lines.get(name) or checking_html(name) for name in names)

    def _details(self, data: PageData, now: float) -> Details:
        """What the details area shows; an open row follows its journal row (status, time left)."""
        if not isinstance(self.details, OpenRow):
            return self.details
        iid = self.details.record.inference_id
        record = next((r for r in data.rows if r.inference_id == iid), None) or self.reader.get(iid)
        if record is not None:  # a forgotten row keeps showing what it last was
            self.details = self._open_row(record, self.details)
        shown = self.details
        preview = shown.preview
        if isinstance(preview, Preview):
            return RowDetails(iid, fields_html(shown.record, now), preview.html, shown.logs, preview.media)
        return RowDetails(iid, fields_html(shown.record, now), preview, shown.logs)


def _same_scope(key: Hashable, other: Hashable) -> bool:
    """Two activity keys ``(scope, counts)`` of the same scope."""
    return isinstance(key, tuple) and isinstance(other, tuple) and key[:1] == other[:1]
