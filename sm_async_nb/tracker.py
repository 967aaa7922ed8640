"""One poller per client: turns S3 objects (or SNS notifications) into journal status changes.

``step(now)`` does at most one refresh with an injected clock, so tests drive time exactly; the
background thread only calls it and sleeps. The interval is short right after a submission and
backs off while nothing changes, up to ``poll_interval``, with jitter.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import EventBus, StatusChange
from .polling import S3Prober
from .records import FINISHED, PendingRow, Status
from .s3uri import S3Uri

if TYPE_CHECKING:
    import pandas as pd

    from .client import AsyncInferenceClient

MIN_INTERVAL = 0.5
BACKOFF = 1.6
JITTER = 0.1
EXPIRY_GRACE_SECONDS = 300
EVENT_MODE_S3_EVERY = 10


@dataclass
class RefreshStats:
    """What the last refresh cost, and totals since the tracker was made."""

    s3_requests: int = 0
    duration: float = 0.0
    pending: int = 0
    changed: int = 0
    at: float | None = None
    refreshes: int = 0
    total_s3_requests: int = 0
    errors: int = 0
    last_error: str | None = None


@dataclass
class _Outcome:
    """What one refresh learned about one pending row."""

    status: Status
    changes: dict[str, Any] = field(default_factory=dict)


def failure_status(reason: str) -> Status:
    """The service writes a failure object for expired requests too; its text says so."""
    return Status.EXPIRED if "expired" in reason.lower() else Status.FAILED


class Tracker:
    def __init__(self, client: "AsyncInferenceClient", *, clock: Callable[[], float] = time.time,
                 grace: float = EXPIRY_GRACE_SECONDS):
        self.client = client
        self.journal = client.journal
        self.clock = clock
        self.grace = grace
        self.events = EventBus()
        self.stats = RefreshStats()
        self.notices: dict[str, str] = {}
        self.s3 = client.aws.new_client("s3")
        self.prober = S3Prober(self.s3.client, client.pool, self._notice)
        self.event_sources: dict[str, Any] = {}  # endpoint name -> QueueEventSource (event mode)
        self._interval = MIN_INTERVAL
        self._next_due = 0.0
        self._refresh_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    # --- one round ---------------------------------------------------------------------------

    def refresh(self, inference_ids: Iterable[str] | None = None, now: float | None = None) -> list[StatusChange]:
        """One synchronous round over the pending invocations (or just ``inference_ids``);
        returns the status changes it made and published."""
        with self._refresh_lock:
            return self._refresh(inference_ids, self.clock() if now is None else now)

    def _refresh(self, inference_ids, now: float) -> list[StatusChange]:
        started, before = time.perf_counter(), self.s3.counter.total("s3")
        if inference_ids is None:
            pending = self.journal.pending(self.client.origin)
        else:
            rows = self.journal.get_many(list(inference_ids))
            pending = [PendingRow.of(r) for r in rows.values() if r.status is Status.PENDING]
        failed = False
        try:
            outcomes = self._learn(pending, now)
        except Exception as exc:
            failed = True
            self.stats.errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            spent = self.s3.counter.total("s3") - before
            self.stats.s3_requests = spent
            self.stats.total_s3_requests += spent
            self.stats.duration = time.perf_counter() - started
            self.stats.pending = len(pending)
            self.stats.at = now
            self.stats.refreshes += 1
            if failed:
                self.stats.changed = 0
                self.events.publish([])  # views show the failed refresh (stats.last_error)
        changes = self.apply(pending, outcomes)
        self.stats.changed = len(changes)
        if not changes:
            self.events.publish([])  # every refresh is published: views update "last refresh"
        return changes

    def _learn(self, pending: Sequence[PendingRow], now: float) -> dict[str, _Outcome]:
        outcomes: dict[str, _Outcome] = {}
        for endpoint_name, source in self.event_sources.items():
            heard = source.poll([r for r in pending if r.endpoint_name == endpoint_name])
            outcomes.update((iid, _Outcome(status, changes)) for iid, (status, changes) in heard.items())
        # Event mode checks S3 only now and then, for notifications that were lost or not sent.
        poll_s3 = not self.event_sources or (self.stats.refreshes + 1) % EVENT_MODE_S3_EVERY == 0
        unresolved = [r for r in pending if r.inference_id not in outcomes and r.output_location
                      and (poll_s3 or r.endpoint_name not in self.event_sources)]
        outputs = {S3Uri.parse(r.output_location): r for r in unresolved}
        for uri, seen in self.prober.find(outputs).items():
            outcomes[outputs[uri].inference_id] = _Outcome(
                Status.COMPLETED, {"output_size": seen.size, "finished_at": seen.last_modified})
        failures = {S3Uri.parse(r.failure_location): r for r in unresolved
                    if r.inference_id not in outcomes and r.failure_location}
        failed = list(self.prober.find(failures).items())
        texts = self.prober.read_texts([uri for uri, _ in failed]) if failed else []
        for (uri, seen), reason in zip(failed, texts):
            outcomes[failures[uri].inference_id] = _Outcome(
                failure_status(reason), {"failure_reason": reason, "finished_at": seen.last_modified})
        for row in pending:
            if row.inference_id not in outcomes and now > row.deadline + self.grace:
                outcomes[row.inference_id] = _Outcome(Status.EXPIRED, {
                    "failure_reason": "No output or failure object appeared within the request's TTL, "
                                      "invocation timeout and a grace period.", "finished_at": now})
        return outcomes

    def apply(self, pending: Sequence[PendingRow], outcomes: dict[str, _Outcome]) -> list[StatusChange]:
        """Write the transitions (compare-and-set, so each happens once across processes), then
        publish the ones this process made."""
        by_id = {r.inference_id: r for r in pending}
        updates = [(iid, Status.PENDING, {"status": o.status, **o.changes}) for iid, o in outcomes.items()
                   if iid in by_id]
        applied = self.journal.update_many(updates) if updates else []
        fresh = self.journal.get_many(applied) if applied else {}
        changes = [StatusChange(iid, Status.PENDING, fresh[iid].status, fresh[iid]) for iid in applied]
        if changes:
            self.events.publish(changes)
        return changes

    # --- event mode --------------------------------------------------------------------------

    def enable_events(self, endpoint_name: str):
        """Listen to the endpoint's SNS notifications through an SQS queue created for it."""
        from . import notifications

        resources = notifications.enable(self.client.aws, endpoint_name)
        self.event_sources[endpoint_name] = notifications.QueueEventSource(self.client.aws, resources)
        return resources

    def disable_events(self, endpoint_name: str, *, remove: bool = True):
        """Stop listening; with ``remove`` delete the queue and subscriptions enable_events made."""
        from . import notifications

        self.event_sources.pop(endpoint_name, None)
        return notifications.remove(self.client.aws, endpoint_name) if remove else None

    def _notice(self, key: str, message: str) -> None:
        """Say each explanation once (the panel and `%sm_async list` show them)."""
        if key not in self.notices:
            self.notices[key] = message
            import warnings

            warnings.warn(message, RuntimeWarning, stacklevel=2)

    # --- timing ------------------------------------------------------------------------------

    def step(self, now: float | None = None) -> list[StatusChange] | None:
        """Refresh if one is due at ``now``; returns the changes, or None when not due."""
        now = self.clock() if now is None else now
        if now < self._next_due:
            return None
        try:
            changes = self.refresh(now=now)
        except Exception:
            changes = []
        self._interval = MIN_INTERVAL if changes else min(self._interval * BACKOFF, self.max_interval)
        self._next_due = now + self._interval * random.uniform(1 - JITTER, 1 + JITTER)
        return changes

    @property
    def max_interval(self) -> float:
        return max(MIN_INTERVAL, self.client.settings.poll_interval)

    @property
    def next_due(self) -> float:
        return self._next_due

    def poke(self) -> None:
        """A submission just happened: poll soon again."""
        self._interval = MIN_INTERVAL
        self._next_due = min(self._next_due, self.clock() + MIN_INTERVAL)
        self._wake.set()

    # --- background thread -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "Tracker":
        """Poll in a daemon thread until stop(); starting twice is harmless."""
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sm-async-nb-tracker", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._wake.clear()
            self._wake.wait(max(0.05, self._next_due - self.clock()))

    # --- waiting and views -------------------------------------------------------------------

    def wait_for(self, inference_ids: Sequence[str], timeout: float | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        """Block until every id is finished; TimeoutError after ``timeout`` seconds.
        ``progress(finished, total)`` is called as the count moves."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.1
        ids = list(inference_ids)
        if self.running:
            self.poke()  # once: then the thread's own back-off decides, however long the wait
        while True:
            unfinished = [r.inference_id for r in self.journal.get_many(ids).values()
                          if r.status not in FINISHED]
            if progress is not None:
                progress(len(ids) - len(unfinished), len(ids))
            if not unfinished:
                return
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"{len(unfinished)} of {len(ids)} invocation(s) still unfinished after "
                                   f"{timeout} s; they keep running: wait again or check .status later.")
            pause = interval if remaining is None else min(interval, remaining)
            if self.running:
                self.events.wait(pause)
            else:
                self.refresh(unfinished)
                time.sleep(pause)
            interval = min(interval * BACKOFF, self.max_interval)

    def subscribe(self, listener) -> Callable[[], None]:
        return self.events.subscribe(listener)

    def to_frame(self, *, include_other_origins: bool = False) -> "pd.DataFrame":
        """One row per tracked invocation: every journal field plus timings."""
        from .frames import records_frame

        return records_frame(self.client.records(include_other_origins=include_other_origins))
