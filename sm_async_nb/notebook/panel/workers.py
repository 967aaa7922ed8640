"""What carries out the panel state's effects, and the threads they run on.

Slow effects run on worker threads of their own, never on the kernel's main thread nor on the
panel's loop: slow actions (load into a DataFrame variable, resubmit, refresh now) one at a time
on ``sm-async-nb-panel``, output previews on ``sm-async-nb-preview`` (bounded by
``display.previews``: a ranged GET of the start, the whole only for small media), log lines on
``sm-async-nb-logs``, endpoint statuses on ``sm-async-nb-endpoints``, the activity charts (SQL
aggregates of the journal) on ``sm-async-nb-activity``. Each answers with an
intent through ``post`` (the loop's), so every answer reaches the state in the same order as
everything else. Quick effects (forget: one SQL delete; start the tracker; set the interval) run
at once on the loop's thread and return their answer. Preview, log and activity reads keep only the
latest request queued: opening another row drops the fetch nobody waits for any more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ...contract.routing import routing_target_of
from ...display import activity, previews
from ...display.activity import ActivityScope
from ...endpoints.status import EndpointSample
from ...handles import HandleParts
from ...records import InvocationRecord
from . import actions
from .details import FetchHead, RowLogs, failed_html, logs_html
from .intents import (
    ActionDone,
    ActivityLoaded,
    ControlJobs,
    DeleteRows,
    Effect,
    EndpointLoaded,
    FetchActivity,
    FetchEndpoint,
    FetchLogs,
    FetchPreview,
    Forgotten,
    Intent,
    LoadFrame,
    LogsLoaded,
    PollNow,
    PreviewLoaded,
    ResubmitRecords,
    Say,
    SetPollInterval,
    StartTracker,
    StopTracker,
    TrackerStopped,
)
from .strip import EndpointStatusFn, RouterStatusFn, checking_html, endpoint_html, router_html, unavailable_html

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

Post = Callable[[Intent], None]
EndpointHistoryFn = Callable[[str], "list[EndpointSample]"]


def wait_all(futures: Iterable[Future[Any]], timeout: float | None) -> bool:
    """Wait for each of ``futures`` (``timeout`` s each); True when all are done."""
    for future in futures:
        try:
            future.result(timeout)
        except Exception:  # a cancelled or failed future is done too
            if not future.done():
                return False
    return True


class Worker:
    """One worker thread and the futures it still runs: ``submit`` (False once closed; with
    ``latest`` the work still queued is dropped first), ``wait_idle``, ``close`` (queued work is
    dropped)."""

    def __init__(self, name: str):
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"sm-async-nb-{name}")
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()

    def submit(self, work: Callable[..., None], *args: Any, latest: bool = False) -> bool:
        with self._lock:
            if latest:
                for future in self._futures:
                    future.cancel()  # only those not started yet
            self._futures = [f for f in self._futures if not f.done()]
            try:
                self._futures.append(self._executor.submit(work, *args))
            except RuntimeError:  # closed
                return False
        return True

    @property
    def idle(self) -> bool:
        with self._lock:
            return all(f.done() for f in self._futures)

    def wait_idle(self, timeout: float | None = 30) -> bool:
        with self._lock:
            futures = list(self._futures)
        return wait_all(futures, timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class PanelWorkers:
    """Carries out effects for one panel (see the module docstring).

    Args:
        parts: the client's handle parts (context, tracker, submitter).
        post: where answers go (the panel loop's ``post``).
        fetch_head: ``(record, limit) -> (first bytes, content type, size)`` of a completed output.
        row_logs: ``record -> log lines``; None when the panel has no log section.
        endpoint_status: ``endpoint name -> EndpointStatus``; None when the panel has no strip.
        endpoint_history: ``endpoint name -> samples`` of its past statuses for the activity charts.
        router_status: ``router name -> RouterStatus``: the strip's line of a routing target (``router/target``).
    """

    def __init__(self, parts: HandleParts, post: Post, *, fetch_head: FetchHead, row_logs: RowLogs | None,
                 endpoint_status: EndpointStatusFn | None, endpoint_history: EndpointHistoryFn | None = None,
                 router_status: RouterStatusFn | None = None):
        self._parts, self._post = parts, post
        self._router_status = router_status
        self._fetch_head, self._row_logs, self._endpoint_status = fetch_head, row_logs, endpoint_status
        self._endpoint_history = endpoint_history
        self._csv_header = parts.ctx.settings.csv_output_header
        self._actions = Worker("panel")
        self._previews = Worker("preview")
        self._logs = Worker("logs")
        self._endpoints = Worker("endpoints")
        self._activity = Worker("activity")
        self.last_frame: pd.DataFrame | None = None

    def _workers(self) -> tuple[Worker, ...]:
        return self._actions, self._previews, self._logs, self._endpoints, self._activity

    def run(self, effect: Effect) -> Intent | None:
        """Carry out ``effect``: a quick one now (its answer returned), a slow one queued (its
        answer posted when done)."""
        match effect:
            case FetchPreview(key, record):
                self._previews.submit(self._answer, lambda: self._preview(key, record), latest=True)
            case FetchLogs(key, record):
                self._logs.submit(self._answer, lambda: self._read_logs(key, record), latest=True)
            case FetchEndpoint(name):
                self._endpoints.submit(self._answer, lambda: self._endpoint(name))
            case FetchActivity(key, scope, now):
                self._activity.submit(self._answer, lambda: self._charts(key, scope, now), latest=True)
            case LoadFrame(records, variable):
                push = actions.user_push()  # looked up now, so a test can provide its own
                self._actions.submit(self._act, lambda: self._load(records, variable, push))
            case ResubmitRecords(records):
                self._actions.submit(self._act, lambda: self._resubmit(records))
            case ControlJobs(action, batch_ids):
                self._actions.submit(self._act, lambda: self._control(action, batch_ids))
            case PollNow():
                self._actions.submit(self._act, self._poll)
            case DeleteRows(inference_ids):
                return Forgotten(inference_ids, self._parts.ctx.journal.forget(sorted(inference_ids)))
            case StartTracker():
                self._parts.tracker.start()
            case StopTracker():  # joins the poller thread: on a thread of its own
                threading.Thread(target=self._stop_tracker, name="sm-async-nb-panel-stop", daemon=True).start()
            case SetPollInterval(seconds):
                return self._set_interval(seconds)
        return None

    # --- answers -----------------------------------------------------------------------------

    def _answer(self, work: Callable[[], Intent]) -> None:
        try:
            self._post(work())
        except Exception:
            log.exception("the panel could not show a background answer")

    def _preview(self, key: Hashable, record: InvocationRecord) -> Intent:
        try:
            preview = previews.load(lambda limit: self._fetch_head(record, limit), csv_header=self._csv_header)
            return PreviewLoaded(key, preview, True)
        except Exception as exc:
            log.debug("preview of %s failed", record.inference_id, exc_info=True)
            return PreviewLoaded(key, failed_html("Preview", exc), False)

    def _read_logs(self, key: Hashable, record: InvocationRecord) -> Intent:
        assert self._row_logs is not None  # the state asks only when the panel has a log section
        try:
            return LogsLoaded(key, logs_html(self._row_logs(record)), True)
        except Exception as exc:
            log.debug("log lines of %s failed", record.inference_id, exc_info=True)
            return LogsLoaded(key, failed_html("Reading the logs", exc), False)

    def _endpoint(self, name: str) -> Intent:
        assert self._endpoint_status is not None  # the state asks only when the panel has a strip
        routed = routing_target_of(name)
        try:
            if routed is not None:  # a routing target's rows: the router's line (its destinations' statuses)
                if self._router_status is None:
                    return EndpointLoaded(name, checking_html(name))
                return EndpointLoaded(name, router_html(self._router_status(routed.router), routed.target))
            status = self._endpoint_status(name)
            return EndpointLoaded(name, endpoint_html(status), status)
        except Exception as exc:
            log.debug("endpoint status of %s failed", name, exc_info=True)
            return EndpointLoaded(name, unavailable_html(name, exc))

    def _charts(self, key: Hashable, scope: ActivityScope, now: float) -> Intent:
        try:
            samples = self._endpoint_history(scope.endpoint) if self._endpoint_history and scope.endpoint else []
            return ActivityLoaded(key, activity.render(self._parts.ctx.journal, scope, now, samples))
        except Exception as exc:
            log.debug("the activity of %s failed", scope.title, exc_info=True)
            return ActivityLoaded(key, failed_html("Reading the activity", exc))

    # --- slow actions ------------------------------------------------------------------------

    def _act(self, work: Callable[[], ActionDone]) -> None:
        """Run one slow action; its outcome, or its error as one line, ends it."""
        try:
            done = work()
        except Exception as exc:
            done = ActionDone(actions.describe_error(exc))
        self._post(done)

    def _load(self, records: Sequence[InvocationRecord], name: str,
              push: Callable[[dict[str, Any]], None] | None) -> ActionDone:
        frame, note = actions.load_frame(self._parts, records)
        self.last_frame = frame
        where = name
        if push is None:
            where = "panel.last_frame (not in IPython)"
        else:
            push({name: frame})
        return ActionDone(f"{where}: DataFrame with {len(frame):,} rows × {len(frame.columns)} columns{note}.")

    def _resubmit(self, records: Sequence[InvocationRecord]) -> ActionDone:
        ids, message = actions.resubmit(self._parts, records)
        return ActionDone(message, tuple(ids))

    def _control(self, action: str, batch_ids: Sequence[str]) -> ActionDone:
        return ActionDone(actions.control_jobs(self._parts, action, batch_ids))

    def _poll(self) -> ActionDone:
        changes = self._parts.tracker.refresh()
        stats = self._parts.tracker.stats
        return ActionDone(f"Refreshed: {len(changes)} changed, {stats.s3_requests} S3 request(s).")

    # --- the tracker's controls --------------------------------------------------------------

    def _stop_tracker(self) -> None:
        try:
            self._parts.tracker.stop()
        finally:
            self._post(TrackerStopped())

    def _set_interval(self, seconds: float) -> Intent:
        settings = self._parts.ctx.settings
        try:
            settings.poll_interval = float(seconds)
        except Exception as exc:  # the setting's own validation
            return Say(f"Interval not changed: {exc}")
        self._parts.tracker.poke()
        return Say(f"Polling at least every {settings.poll_interval:g} s.")

    # --- lifetime ----------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return all(w.idle for w in self._workers())

    def wait_idle(self, timeout: float | None = 30) -> bool:
        """Wait for the running action and background look-ups; True if none is left."""
        return all(w.wait_idle(timeout) for w in self._workers())

    def close(self) -> None:
        for worker in self._workers():
            worker.close()
