"""One poller per client: turns S3 objects (or SNS notifications) into journal status changes.

``step(now)`` does at most one refresh with an injected clock, so tests drive time exactly; the
background thread only calls it and sleeps. The interval is short right after a submission and
backs off while nothing changes, up to ``poll_interval``, with jitter.

Locks (see docs/ARCHITECTURE.md for the whole picture):

* ``_refresh_lock`` serialises refreshes (the poller thread, ``refresh()`` from a cell, the panel's
  "Refresh now"). It is held while S3 is read and the journal written, and **released before the
  changes are published**, so a listener may call ``refresh()`` or ``inv.result()`` itself.
* ``_timing_lock`` guards the interval and the next due time, which ``poke()`` changes from the
  submitting thread while the poller reads them.
* ``_s3_lock`` makes the lazy creation of the tracker's own S3 client happen once.
"""

from __future__ import annotations

import logging
import numbers
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..aws.clients import CountedS3, as_error
from ..aws.s3uri import S3Uri
from ..context import Context
from ..contract.service import EXPIRY_GRACE_SECONDS, OUTPUT_CLOCK_SKEW_SECONDS, is_overdue, written_for
from ..errors import AwsError, JournalError, ValidationError
from ..journal.frames import journal_frame
from ..records import FINISHED, Finish, PendingRow, Status, failure_status
from . import sqs_events
from .bus import Listener, StatusBus, StatusChange
from .probe import S3Prober

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

MIN_INTERVAL = 0.5
BACKOFF = 1.6
JITTER = 0.1
EVENT_MODE_S3_EVERY = 10
PROBLEM_KINDS = frozenset({"credentials", "connection", "access_denied", "region"})
EXPIRED_REASON = ("No output or failure object appeared within the request's TTL, invocation timeout "
                  "and a grace period.")


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


class Tracker:
    """Polls the pending invocations of one client's origin and journals what it learns."""

    def __init__(self, ctx: Context, *, clock: Callable[[], float] = time.time,
                 grace: float = EXPIRY_GRACE_SECONDS):
        self.ctx = ctx
        self.journal = ctx.journal
        self.clock = clock
        self.grace = grace
        self.skew = OUTPUT_CLOCK_SKEW_SECONDS
        self.bus = StatusBus()
        self.stats = RefreshStats()
        self.notices: dict[str, str] = {}
        # One line with the next step while AWS cannot be asked (expired credentials, no network);
        # None when the last refresh worked. Rows never change status because of it.
        self.problem: str | None = None
        self.event_sources: dict[str, sqs_events.QueueEventSource] = {}  # endpoint -> event mode
        self._s3: CountedS3 | None = None
        self._prober: S3Prober | None = None
        self._s3_lock = threading.Lock()
        self._interval = MIN_INTERVAL
        self._next_due = 0.0
        self._timing_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()

    @property
    def s3(self) -> CountedS3:
        """The tracker's own S3 client (own request counter), made on first use."""
        with self._s3_lock:
            if self._s3 is None:
                self._s3 = self.ctx.aws.new_s3()
                self._prober = S3Prober(self._s3.client, self.ctx.pool, self._notice)
            return self._s3

    @property
    def prober(self) -> S3Prober:
        self.s3  # noqa: B018 - makes the prober with the client
        assert self._prober is not None
        return self._prober

    # --- one round ---------------------------------------------------------------------------

    def refresh(self, inference_ids: Iterable[str] | None = None, now: float | None = None) -> list[StatusChange]:
        """One synchronous round over the pending invocations (or just ``inference_ids``);
        returns the status changes it made. Listeners hear of them after the lock is released."""
        changes: list[StatusChange] = []
        try:
            with self._refresh_lock:
                try:
                    changes = self._refresh(inference_ids, self.clock() if now is None else now)
                except JournalError as exc:  # nothing can be tracked any more: say so where people look
                    self._set_problem(exc)
                    raise
                except sqs_events.QueueGone:
                    raise
                except Exception as exc:
                    error = as_error(exc, doing="Checking on the invocations")
                    if isinstance(error, AwsError) and error.kind in PROBLEM_KINDS:
                        self._set_problem(error)
                    raise error from exc
                self._set_problem(None)
        finally:
            # Every refresh is published, a failed one too (views show stats.last_error), and
            # only once the lock is released.
            self.bus.publish(changes)
        return changes

    def _refresh(self, inference_ids: Iterable[str] | None, now: float) -> list[StatusChange]:
        s3 = self.s3
        started, before = time.perf_counter(), s3.counter.total("s3")
        if inference_ids is None:
            pending = self.journal.pending(self.ctx.origin)
        else:
            rows = self.journal.get_many(list(inference_ids))
            pending = [PendingRow.of(r) for r in rows.values() if r.status is Status.PENDING]
        try:
            outcomes = self._learn(pending, now)
            changes = self._apply(pending, outcomes)
        except Exception as exc:
            self.stats.errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            self.stats.changed = 0
            raise
        finally:
            spent = s3.counter.total("s3") - before
            self.stats.s3_requests = spent
            self.stats.total_s3_requests += spent
            self.stats.duration = time.perf_counter() - started
            self.stats.pending = len(pending)
            self.stats.at = now
            self.stats.refreshes += 1
        self.stats.changed = len(changes)
        return changes

    def _ours(self, row: PendingRow, written: float | None, what: str) -> bool:
        """Output identity, on S3's clock only (contract.service.written_for): at a name this client generated,
        any object is this invocation's; at a name the user chose (an inference id, a Filename) an object
        written before the invoke is an earlier request's. The invoke's time is put on S3's clock with the
        offset measured when it was answered (else the current one), never compared with the notebook's."""
        if written is None or not row.named_by_user:
            return True
        offset = row.clock_offset if row.clock_offset is not None else (self.ctx.aws.s3_clock.offset() or 0.0)
        if written_for(written, row.invoked_at + offset, self.skew):
            return True
        log.info("ignoring the %s at the location of %s: written %.0f s before its invoke (an earlier request's)",
                 what, row.inference_id, row.invoked_at + offset - written)
        return False

    def _learn(self, pending: Sequence[PendingRow], now: float) -> dict[str, Finish]:
        """How pending rows ended. What S3 and the notifications say happens on S3's clock; every
        ``Finish`` returned is on the notebook's (``ServerClock.to_local``), like the rest of the journal."""
        outcomes: dict[str, Finish] = {}
        by_id = {r.inference_id: r for r in pending}
        clock = self.ctx.aws.s3_clock
        for endpoint_name, source in list(self.event_sources.items()):
            try:
                heard = source.poll([r for r in pending if r.endpoint_name == endpoint_name])
            except sqs_events.QueueGone as gone:
                self.event_sources.pop(endpoint_name, None)
                self._notice(f"queue-gone:{endpoint_name}", f"The event-mode queue {gone} of {endpoint_name!r} no "
                             "longer exists; status comes from S3 polling again. `%sm_async events on "
                             f"{endpoint_name}` makes a new queue.")
                continue
            outcomes.update((iid, end._replace(finished_at=None if end.finished_at is None
                                               else clock.to_local(end.finished_at)))
                            for iid, end in heard.items() if self._ours(by_id[iid], end.finished_at, "notification"))
        # Event mode checks S3 only now and then, for notifications that were lost or not sent.
        poll_s3 = not self.event_sources or (self.stats.refreshes + 1) % EVENT_MODE_S3_EVERY == 0
        unresolved = [r for r in pending if r.inference_id not in outcomes and r.output_location
                      and (poll_s3 or r.endpoint_name not in self.event_sources)]
        outputs = {S3Uri.parse(r.output_location): r for r in unresolved if r.output_location}
        for uri, seen in self.prober.find(outputs).items():
            if self._ours(outputs[uri], seen.last_modified, "output"):
                iid = outputs[uri].inference_id
                outcomes[iid] = Finish(iid, Status.COMPLETED, clock.to_local(seen.last_modified),
                                       output_size=seen.size)
        failures = {S3Uri.parse(r.failure_location): r for r in unresolved
                    if r.inference_id not in outcomes and r.failure_location}
        failed = [(uri, seen) for uri, seen in self.prober.find(failures).items()
                  if self._ours(failures[uri], seen.last_modified, "failure object")]
        texts = self.prober.read_texts([uri for uri, _ in failed]) if failed else []
        for (uri, seen), reason in zip(failed, texts, strict=True):
            iid = failures[uri].inference_id
            outcomes[iid] = Finish(iid, failure_status(reason), clock.to_local(seen.last_modified),
                                   failure_reason=reason)
        for row in pending:
            if row.inference_id not in outcomes and is_overdue(row.deadline, now, self.grace):
                outcomes[row.inference_id] = Finish(row.inference_id, Status.EXPIRED, now,
                                                    failure_reason=EXPIRED_REASON)
        return outcomes

    def _apply(self, pending: Sequence[PendingRow], outcomes: dict[str, Finish]) -> list[StatusChange]:
        """Write the transitions (compare-and-set, so each happens once across processes);
        returns the ones this process made."""
        by_id = {r.inference_id: r for r in pending}
        ends = [end for iid, end in outcomes.items() if iid in by_id]
        applied = self.journal.finish(ends) if ends else []
        fresh = self.journal.get_many(applied) if applied else {}
        return [StatusChange(iid, Status.PENDING, fresh[iid].status, fresh[iid]) for iid in applied if iid in fresh]

    # --- event mode --------------------------------------------------------------------------

    def enable_events(self, endpoint_name: str) -> sqs_events.EventResources:
        """Listen to the endpoint's SNS notifications through an SQS queue created for it."""
        resources = sqs_events.enable(self.ctx.aws, endpoint_name)
        self.event_sources[endpoint_name] = sqs_events.QueueEventSource(self.ctx.aws, resources)
        return resources

    def disable_events(self, endpoint_name: str, *, remove: bool = True) -> sqs_events.EventResources | None:
        """Stop listening; with ``remove`` delete the queue and subscriptions enable_events made."""
        self.event_sources.pop(endpoint_name, None)
        return sqs_events.remove(self.ctx.aws, endpoint_name) if remove else None

    def _set_problem(self, error: AwsError | JournalError | None) -> None:
        message = None
        if error is not None:
            message = str(error)
            if isinstance(error, AwsError) and error.kind == "credentials":
                message += " Tracking resumes by itself once they work again; nothing was marked failed."
        if message != self.problem:
            if message:
                log.warning("%s", message)
            elif self.problem:
                log.warning("AWS answers again; tracking resumed.")
        self.problem = message

    def _notice(self, key: str, message: str) -> None:
        """Say each explanation once: logged here, shown by the panel and `%sm_async list`
        (never a warning printed into whichever cell happens to be running)."""
        if key not in self.notices:
            self.notices[key] = message
            log.warning("%s", message)

    # --- timing ------------------------------------------------------------------------------

    def step(self, now: float | None = None) -> list[StatusChange] | None:
        """Refresh if one is due at ``now``; returns the changes, or None when not due."""
        now = self.clock() if now is None else now
        with self._timing_lock:
            if now < self._next_due:
                return None
        try:
            changes = self.refresh(now=now)
        except (AwsError, JournalError) as exc:  # said once through self.problem; the next step tries again
            log.debug("refresh failed: %s", exc)
            changes = []
        except Exception:
            log.exception("refresh failed; the tracker keeps polling")
            changes = []
        with self._timing_lock:
            self._interval = MIN_INTERVAL if changes else min(self._interval * BACKOFF, self.max_interval)
            self._next_due = now + self._interval * random.uniform(1 - JITTER, 1 + JITTER)
        return changes

    @property
    def max_interval(self) -> float:
        return max(MIN_INTERVAL, self.ctx.settings.poll_interval)

    @property
    def next_due(self) -> float:
        with self._timing_lock:
            return self._next_due

    def poke(self) -> None:
        """A submission just happened: poll soon again."""
        with self._timing_lock:
            self._interval = MIN_INTERVAL
            self._next_due = min(self._next_due, self.clock() + MIN_INTERVAL)
        self._wake.set()

    # --- background thread -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> Tracker:
        """Poll in a daemon thread until stop(); starting twice is harmless."""
        with self._thread_lock:
            if not self.running:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="sm-async-nb-tracker", daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        with self._thread_lock:
            thread, self._thread = self._thread, None
            self._stop.set()
            self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # step() already logs refresh errors; this is a bug in step itself
                log.exception("tracker step failed")
            self._wake.clear()
            self._wake.wait(max(0.05, self.next_due - self.clock()))

    # --- waiting and views -------------------------------------------------------------------

    def wait_for(self, inference_ids: Sequence[str], timeout: float | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        """Block until every id is finished; TimeoutError after ``timeout`` seconds.
        ``progress(finished, total)`` is called as the count moves.

        Raises:
            ValidationError: a bad ``timeout``. TimeoutError: still unfinished after ``timeout``.
            JournalError: the journal cannot be read any more (deleted or replaced): at once, and
                ``problem`` says so.
        """
        if timeout is not None and not (isinstance(timeout, numbers.Real) and not isinstance(timeout, bool)
                                        and 0 <= timeout < float("inf")):
            raise ValidationError(f"timeout must be a number of seconds >= 0 (or None to wait as long as it "
                                  f"takes), not {timeout!r}.", parameter="timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.1
        ids = list(inference_ids)
        if self.running:
            self.poke()  # once: then the thread's own back-off decides, however long the wait
        while True:
            try:
                rows = self.journal.get_many(ids)
            except JournalError as exc:  # e.g. the file was deleted: waiting longer cannot help
                self._set_problem(exc)
                raise
            unfinished = [r.inference_id for r in rows.values() if r.status not in FINISHED]
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
                self.bus.wait(pause)
            else:
                self.refresh(unfinished)
                time.sleep(pause)
            interval = min(interval * BACKOFF, self.max_interval)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self.bus.subscribe(listener)

    def to_frame(self, *, include_other_origins: bool = False) -> pd.DataFrame:
        """One row per tracked invocation: every journal field plus timings."""
        return journal_frame(self.journal, None if include_other_origins else self.ctx.origin)
