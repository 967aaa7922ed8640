"""Jobs (SPEC §16): batches whose requests the client holds QUEUED and invokes in the background, a
window at a time (flow control), sends again when they expire (retries), reads in the background
(``background=True``), and pauses, resumes and cancels.

One thread per client, ``sm-async-nb-jobs``, drives every job of this process. Each turn, for each
running job: retry what expired (``dispatch.RetryPlan``), then invoke as many QUEUED rows as the window
has room for (``dispatch.QueuedPlan``) — both through the one runner — and mark the job done once
nothing of it is queued, unread, unfinished or to be retried. It wakes when the tracker publishes (a
finish frees a slot), when a reader queues requests, and every ``TICK_S`` otherwise; ``step()`` does
one turn for tests.

What a job does is journaled on its batch row (``job_state``, ``job_owner``, ``read_position``,
``source_json``), so a restarted kernel finds its QUEUED rows and shows the job as paused (a RUNNING
job whose owner process is gone); nothing resumes by itself: ``resume()`` claims it for this process,
after checking that the queued inputs are still in S3, and a dataset source is read again from where
it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..aws.s3uri import S3Uri
from ..context import Context
from ..contract.service import DEFAULT_TTL_SECONDS
from ..errors import SubmissionInterrupted, ValidationError
from ..records import ON_ENDPOINT, UNFINISHED, BatchRecord, InvocationRecord, JobState, Status
from . import flow
from .dispatch import QueuedPlan, RetryPlan, retryable
from .options import AUTO
from .options import parse as parse_options
from .owners import owner_alive
from .plans import DatasetPlan, Plan
from .runner import Submitter

log = logging.getLogger(__name__)

TICK_S = 0.25
UNLIMITED_PER_TURN = 512      # without a window, QUEUED rows are invoked this many per turn
CANCELLED = "Cancelled, not sent: batch.cancel() was called while it was queued."
_DELETE_CHUNK = 1000           # DeleteObjects takes at most 1,000 keys

CapacityOf = Callable[[str], flow.Capacity]


@dataclass
class Job:
    """A job this process drives: its batch, its window, and (while its source is read) its plan."""

    batch_id: str
    endpoint_name: str
    max_pending: int | str | None
    retries: int
    ttl_seconds: float
    plan: Plan | None = None                 # still to be read (background, or a resumed dataset)
    paused: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None
    reader_error: BaseException | None = None
    journaled: bool = False                  # its batch row was seen (a missing one later: forgotten)

    @property
    def reading(self) -> bool:
        return self.reader is not None and self.reader.is_alive()


class Jobs:
    """The client's jobs: started by ``submit_*``, driven by one thread, paused/resumed/cancelled by name."""

    def __init__(self, ctx: Context, submitter: Submitter, *, capacity: CapacityOf, lag: Callable[[], float],
                 on_activity: Callable[[], None], subscribe: Callable[[Callable[[Any], None]], Callable[[], None]]):
        """
        Args:
            ctx: the client's context.
            submitter: the one runner.
            capacity: an endpoint's current instances and per-instance concurrency (for "auto").
            lag: seconds between a finish and its being seen (the tracker's polling interval).
            on_activity: called when jobs send something or change (starts and pokes the tracker).
            subscribe: listen to the tracker's refreshes (a finish frees a slot); done when the thread starts.
        """
        self.ctx = ctx
        self.submitter = submitter
        self.capacity = capacity
        self.lag = lag
        self.on_activity = on_activity
        self._subscribe = subscribe
        self._unsubscribe: Callable[[], None] | None = None
        self._jobs: dict[str, Job] = {}
        self._decisions: dict[str, flow.Decision] = {}  # the last "auto" window of each batch, kept when it ends
        self._lock = threading.Lock()      # the dict of jobs; never held while sending or calling out
        self._turn = threading.Lock()      # one turn at a time (the thread, or step() from a test)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.problem: str | None = None    # the last turn's failure, one line (None: fine)

    # --- starting ----------------------------------------------------------------------------

    def submit(self, plan: Plan) -> None:
        """Run a job's plan: opened (checked) here, then read, uploaded and held QUEUED — in the caller
        (foreground) or on a reader thread (``background``) — while the job thread invokes.

        Raises:
            ValidationError: from ``plan.open()``; nothing sent.
            SubmissionInterrupted / SubmissionError: from a foreground run (the job is paused).
        """
        self.submitter.open(plan)
        assert plan.batch is not None
        self.submitter.endpoints.require([plan.target])
        # The batch row now, before anything is read or sent: the handle returned at once names it, and a
        # kernel killed before the first request was journaled still leaves a job to resume.
        self.ctx.journal.add_missing([], plan.batch)
        options = plan.options
        job = Job(plan.batch.batch_id, plan.target, options.max_pending, options.retries,
                  float(options.request_ttl_seconds or 0) or _default_ttl())
        plan.paused = job.paused
        plan.on_position = self._position_recorder(job.batch_id)
        with self._lock:
            self._jobs[job.batch_id] = job
        self._ensure_thread()
        if options.background:
            self._read_in_background(job, plan)
            return
        try:
            self.submitter.run(plan)
        except SubmissionInterrupted:
            # Ctrl-C: the runner already holds the job (nothing more is invoked); journal it paused so it
            # says so, and keep the plan so that ``resume()`` reads on from where it stopped.
            job.plan = plan
            self.pause(job.batch_id)
            raise
        self._wake.set()

    def _read_in_background(self, job: Job, plan: Plan) -> None:
        job.plan = plan

        def read() -> None:
            try:
                self.submitter.run(plan)
            except BaseException as exc:  # logged and shown; the job keeps what it queued
                job.reader_error = exc
                self.problem = f"{type(exc).__name__}: {exc}"
                log.warning("reading batch %s stopped: %s", job.batch_id, exc)
            finally:
                if not job.paused.is_set():
                    job.plan = None
                self._wake.set()

        job.reader = threading.Thread(target=read, name=f"sm-async-nb-reader-{job.batch_id[-12:]}", daemon=True)
        job.reader.start()

    def _position_recorder(self, batch_id: str) -> Callable[[int | None], None]:
        def record(position: int | None) -> None:
            self.ctx.journal.set_job(batch_id, read_position=position)
            self._wake.set()
        return record

    # --- controls ----------------------------------------------------------------------------

    def state(self, batch: BatchRecord) -> JobState | None:
        """What a batch's job is doing as seen from here: a RUNNING job nobody alive drives is PAUSED."""
        if batch.job_state is JobState.RUNNING and batch.job_owner is not None and not owner_alive(batch.job_owner):
            return JobState.PAUSED
        return batch.job_state

    def pause(self, batch_id: str) -> bool:
        """Stop invoking (and reading) this batch; what is on the endpoint runs on. Whether it was running."""
        batch = self._job_batch(batch_id)
        with self._lock:
            job = self._jobs.get(batch_id)
        if job is not None:
            self._finish_if_done(job)  # every part finished before the thread's turn noticed: done, not paused
            job.paused.set()
        changed = self.ctx.journal.set_job(batch_id, state=JobState.PAUSED, expect=[JobState.RUNNING])
        log.info("batch %s paused (%s)", batch_id, "was running" if changed else self.state(batch))
        self.on_activity()
        return changed

    def resume(self, batch_id: str) -> bool:
        """Continue a paused job (or one whose kernel died) in this process. Whether it was resumed
        (False: it is done, cancelled, or running here already).

        Raises:
            ValidationError: queued inputs are gone from S3 (nothing is sent: ``cancel()`` it, or upload
                them again and resubmit), or the source cannot be read again.
        """
        batch = self._job_batch(batch_id)
        state = self.state(batch)
        with self._lock:
            job = self._jobs.get(batch_id)
        if state not in (JobState.PAUSED, JobState.RUNNING) or (state is JobState.RUNNING and job is not None
                                                                and not job.paused.is_set()):
            return False
        self._check_inputs(batch_id)
        plan = job.plan if job is not None else None
        if plan is None and batch.read_position is not None and batch.source_json:
            plan = self._reopen(batch)
        if not self.ctx.journal.set_job(batch_id, state=JobState.RUNNING, owner=os.getpid(),
                                        expect=[JobState.PAUSED, JobState.RUNNING]):
            return False
        if self.problem and self.problem.startswith(f"batch {batch_id} "):
            self.problem = None  # what paused it is behind it now (if not, the next turn says so again)
        if job is None:
            job = Job(batch_id, batch.endpoint_name, _window_of(batch), batch.retries, _batch_ttl(self.ctx, batch_id),
                      journaled=True)
            with self._lock:
                self._jobs[batch_id] = job
        job.paused.clear()
        if plan is not None and not job.reading:
            plan.paused = job.paused
            plan.on_position = self._position_recorder(batch_id)
            plan.start = batch.read_position or 0
            self._read_in_background(job, plan)
        self._ensure_thread()
        self._wake.set()
        self.on_activity()
        log.info("batch %s resumed", batch_id)
        return True

    def cancel(self, batch_id: str) -> int:
        """QUEUED rows → ERROR "cancelled, not sent", their inputs (ours, never the user's) removed, the
        source read no further; what is on the endpoint runs on. Returns how many were cancelled."""
        self._job_batch(batch_id)
        with self._lock:
            job = self._jobs.pop(batch_id, None)
        if job is not None:
            self._finish_if_done(job)  # nothing left to cancel: done, not cancelled
            job.paused.set()
            if job.reader is not None:
                job.reader.join(timeout=60)  # in-flight uploads finish and are queued, then cancelled below
        self.ctx.journal.set_job(batch_id, state=JobState.CANCELLED, expect=[JobState.RUNNING, JobState.PAUSED])
        cancelled = self.ctx.journal.cancel_queued(batch_id, CANCELLED)
        self._remove_inputs([r for r in cancelled if not r.user_input and r.input_location])
        log.info("batch %s cancelled: %d queued request(s) not sent", batch_id, len(cancelled))
        self.on_activity()
        return len(cancelled)

    def decision(self, batch_id: str) -> flow.Decision | None:
        """What the last turn decided for ``max_pending="auto"`` (None: not decided yet, or not auto)."""
        with self._lock:
            return self._decisions.get(batch_id)

    def _job_batch(self, batch_id: str) -> BatchRecord:
        batch = self.ctx.journal.get_batch(batch_id)
        if batch is None:
            raise ValidationError(f"Batch {batch_id!r} is not tracked.", parameter="batch_id")
        if batch.job_state is None:
            raise ValidationError(f"Batch {batch.label or batch_id!r} was sent at once (no max_pending, background "
                                  "or retries): there is nothing held back to pause, resume or cancel.",
                                  parameter="batch_id")
        return batch

    def _check_inputs(self, batch_id: str) -> None:
        """Every QUEUED row's input is still in S3: one listing per input folder, not one HEAD per row."""
        rows = self.ctx.journal.queued(batch_id, 1_000_000)
        folders: dict[tuple[str, str], set[str]] = {}
        for row in rows:
            if row.input_location:
                uri = S3Uri.parse(row.input_location)
                folders.setdefault((uri.bucket, uri.key.rpartition("/")[0]), set()).add(uri.key)
        missing: list[str] = [r.inference_id for r in rows if not r.input_location]
        s3 = self.ctx.aws.s3
        for (bucket, folder), keys in folders.items():
            found: set[str] = set()
            prefix = f"{folder}/" if folder else ""
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
                found.update(o["Key"] for o in page.get("Contents", []))
            missing += [f"s3://{bucket}/{key}" for key in sorted(keys - found)]
        if missing:
            raise ValidationError(
                f"{len(missing)} queued input(s) of batch {batch_id} are gone from S3 (e.g. {missing[0]}); nothing "
                "was sent. cancel() the batch, or upload them again and resume.", parameter="batch_id")

    def _reopen(self, batch: BatchRecord) -> Plan:
        """The plan that reads a batch's source again (a dataset), from its journaled description."""
        try:
            described = json.loads(batch.source_json or "")
            options = parse_options("submit_dataset", dict(described["options"], background=True))
            plan = DatasetPlan(self.submitter.preparer, batch.endpoint_name, described["source"], options,
                               described["prefix"], workers=self.ctx.pool._max_workers)  # type: ignore[attr-defined]
            plan.ids.generated = bool(described.get("generated"))
            self.submitter.open(plan)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"The source of batch {batch.batch_id} cannot be read again ({exc}); its queued "
                                  "requests are kept: cancel() the batch to drop them.", parameter="batch_id") from None
        return plan

    def _remove_inputs(self, rows: list[InvocationRecord]) -> None:
        by_bucket: dict[str, list[InvocationRecord]] = {}
        for row in rows:
            assert row.input_location is not None
            by_bucket.setdefault(S3Uri.parse(row.input_location).bucket, []).append(row)
        removed: list[str] = []
        for bucket, found in by_bucket.items():
            for start in range(0, len(found), _DELETE_CHUNK):
                chunk = found[start:start + _DELETE_CHUNK]
                keys: Any = [{"Key": S3Uri.parse(r.input_location or "").key} for r in chunk]
                try:
                    self.ctx.aws.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                    removed += [r.inference_id for r in chunk]
                except Exception as exc:  # they stay in S3 (the rows say so); one line, no traceback
                    log.warning("could not remove %d cancelled input(s) from %s: %s", len(chunk), bucket, exc)
        if removed:
            self.ctx.journal.inputs_removed(removed)

    # --- the thread --------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._unsubscribe is None:
                self._unsubscribe = self._subscribe(self.wake)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, name="sm-async-nb-jobs", daemon=True)
                self._thread.start()

    def wake(self, *_: Any) -> None:
        """Something changed (a finish, a queued request): take a turn soon."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK_S)
            self._wake.clear()
            try:
                self.step()
            except Exception as exc:  # a turn that failed is tried again; the jobs keep their rows
                self.problem = f"{type(exc).__name__}: {exc}"
                log.exception("a jobs turn failed; trying again")

    def close(self) -> None:
        """Stop the thread; the jobs it drove are journaled PAUSED (their QUEUED rows wait for ``resume()``,
        from a new client in this process as in the next kernel: nothing drives them any more)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            jobs, thread = list(self._jobs.values()), self._thread
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        for job in jobs:
            job.paused.set()
            if job.reader is not None:
                job.reader.join(timeout=30)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        for job in jobs:
            try:
                self._finish_if_done(job)  # a job with nothing left is DONE, not paused
                if self.ctx.journal.set_job(job.batch_id, state=JobState.PAUSED, expect=[JobState.RUNNING]):
                    log.info("batch %s paused: its client was closed", job.batch_id)
            except Exception as exc:  # closing goes on; a dead owner's RUNNING job shows as paused anyway
                log.warning("could not journal batch %s as paused: %s", job.batch_id, exc)

    def step(self, now: float | None = None) -> int:
        """One turn over every job this process drives; returns how many requests were invoked or retried."""
        now = self.ctx.clock() if now is None else now
        with self._turn:
            with self._lock:
                jobs = list(self._jobs.values())
            moved = sum(self._step_job(job, now) for job in jobs)
        if moved:
            self.on_activity()
        return moved

    def _step_job(self, job: Job, now: float) -> int:
        journal = self.ctx.journal
        batch = journal.get_batch(job.batch_id)
        if batch is None:
            if job.journaled and not job.reading:
                self._drop(job)  # forgotten
            return 0
        job.journaled = True
        if job.paused.is_set() or batch.job_state is not JobState.RUNNING or batch.job_owner != os.getpid():
            return 0
        moved = self._retry(job) if job.retries else 0
        window = self._window(job, now)
        unlimited = window is None
        if window is not None:
            on_endpoint = (journal.endpoint_count(self.ctx.origin, job.endpoint_name, ON_ENDPOINT)
                           if job.max_pending == AUTO else journal.batch_count(job.batch_id, ON_ENDPOINT))
            room = window - on_endpoint
        else:
            room = UNLIMITED_PER_TURN
        if room > 0:
            rows = journal.queued(job.batch_id, room)
            if rows:
                plan = QueuedPlan(self.submitter.preparer, rows)
                plan.paused = job.paused  # a pause (or a problem that pauses the job) keeps rows QUEUED
                try:
                    self.submitter.run(plan)
                except Exception as exc:
                    self.problem = f"batch {job.batch_id}: {exc}"
                    log.warning("invoking queued requests of %s failed: %s", job.batch_id, exc)
                if plan.stopped_by is not None and job.paused.is_set():
                    self._paused_by(job, plan.stopped_by.message)
                moved += len(rows)
        if moved == 0 or unlimited:
            self._finish_if_done(job)
        return moved

    def _paused_by(self, job: Job, why: str) -> None:
        """A problem every request would hit paused the job: journal it paused and say so, once."""
        if self.ctx.journal.set_job(job.batch_id, state=JobState.PAUSED, expect=[JobState.RUNNING]):
            self.problem = (f"batch {job.batch_id} paused: {why} Its queued requests wait; "
                            "batch.resume() continues once that is fixed.")
            log.warning("%s", self.problem)

    def _window(self, job: Job, now: float) -> int | None:
        if job.max_pending is None:
            return None
        if job.max_pending != AUTO:
            return int(job.max_pending)
        since = now - flow.RATE_WINDOW_S
        count, first = self.ctx.journal.completions(self.ctx.origin, job.endpoint_name, since,
                                                    [Status.COMPLETED, Status.FAILED, Status.EXPIRED])
        span = now - max(since, first if first is not None else now)
        rate = count / span if count and span > 0 else None
        pace = flow.Pace(self.capacity(job.endpoint_name), rate, job.ttl_seconds / self.ctx.time_scale, self.lag())
        decision = flow.auto_window(pace)
        with self._lock:
            self._decisions[job.batch_id] = decision
        return decision.window

    def _retry(self, job: Job) -> int:
        candidates = [row for row, attempts in self.ctx.journal.retry_candidates(job.batch_id)
                      if attempts <= job.retries and retryable(row)]
        if not candidates:
            return 0
        plan = RetryPlan(self.submitter.preparer, candidates)
        try:
            self.submitter.run(plan)
        except Exception as exc:
            self.problem = f"retrying batch {job.batch_id}: {exc}"
            log.warning("retrying parts of %s failed: %s", job.batch_id, exc)
        log.info("batch %s: %d part(s) sent again", job.batch_id, plan.total)
        return plan.total

    def will_retry(self, batch: BatchRecord, record: InvocationRecord) -> bool:
        """Whether this finished attempt is still to be sent again by its job (so it is not the slot's last)."""
        if not batch.retries or record.resubmitted_as is not None or not retryable(record):
            return False
        if self.state(batch) not in (JobState.RUNNING, JobState.PAUSED):
            return False
        attempts = sum(1 for r in self.ctx.journal.batch_rows(batch.batch_id) if r.batch_index == record.batch_index)
        return attempts <= batch.retries

    def _finish_if_done(self, job: Job) -> None:
        journal = self.ctx.journal
        if job.reading or job.plan is not None:
            return
        if journal.batch_count(job.batch_id, UNFINISHED):
            return
        if job.retries and any(attempts <= job.retries and retryable(row)
                               for row, attempts in journal.retry_candidates(job.batch_id)):
            return
        journal.set_job(job.batch_id, state=JobState.DONE, expect=[JobState.RUNNING])
        log.info("batch %s: job done", job.batch_id)
        self._drop(job)

    def _drop(self, job: Job) -> None:
        with self._lock:
            self._jobs.pop(job.batch_id, None)

    def active(self) -> list[str]:
        """The batch ids this process drives now."""
        with self._lock:
            return list(self._jobs)


def _default_ttl() -> float:
    return float(DEFAULT_TTL_SECONDS)


def _window_of(batch: BatchRecord) -> int | str | None:
    if batch.max_pending is None or batch.max_pending == AUTO:
        return batch.max_pending
    return int(batch.max_pending)


def _batch_ttl(ctx: Context, batch_id: str) -> float:
    rows = ctx.journal.queued(batch_id, 1)
    ttl = rows[0].request.get("request_ttl_seconds") if rows else None
    return float(ttl) if ttl else _default_ttl()


def recover_jobs(ctx: Context) -> list[str]:
    """Jobs left RUNNING by a process that died show as paused from now on (journaled PAUSED); returns them.
    Nothing resumes by itself."""
    paused = []
    for batch in ctx.journal.jobs([JobState.RUNNING]):
        if batch.job_owner is not None and not owner_alive(batch.job_owner) and ctx.journal.set_job(
                batch.batch_id, state=JobState.PAUSED, expect=[JobState.RUNNING]):
            paused.append(batch.batch_id)
    if paused:
        log.info("%d job(s) of a kernel that ended are paused: resume() continues them", len(paused))
    return paused


