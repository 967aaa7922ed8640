"""The one runner behind every ``submit_*`` method and ``resubmit()``: a plan's requests, journaled
and sent from the client's worker pool, a window at a time, under one stop signal.

A run, on the calling thread:

1. ``plan.open()``: what must be read and checked before anything is sent;
2. take requests from the plan while the :class:`Window` has room; check their endpoints exist (once per
   client: ``endpoint_check``); journal them in one transaction
   (new rows inserted, existing ones claimed compare-and-set) **before** any upload; hand them to
   the pool (``sender.Sender.send``: upload, invoke, journal the answer);
3. wait for any of them to finish, in slices of ``WAIT_SLICE_S``, and go on until the plan is
   exhausted or the run's :class:`~.sender.StopSignal` is set.

Threads and interrupts: the calling thread only reads the plan, journals and waits, so Ctrl-C (a
KeyboardInterrupt in that thread, from a real SIGINT or from ``_thread.interrupt_main()``, which is
how ipykernel interrupts on Windows) never cuts a request in half. Waiting in short slices matters
for the second kind: a simulated interrupt does not wake a blocked wait, it is raised when the
thread next runs Python code. On Ctrl-C, requests not yet started are never sent (journaled ERROR
"not sent"), those in flight finish and are journaled, and :class:`SubmissionInterrupted` says what
happened; a second Ctrl-C stops the waiting, not the requests in flight (they journal themselves).

One stop signal per run: once a request fails in a way every other one would (expired credentials,
a missing bucket, a lost connection), or crashes, or Ctrl-C comes, no request that has not started
is sent and a streamed plan (a dataset) reads no further; the run ends with what it journaled.

Seams for SPEC §16 (jobs), which hang off this runner: the window (``max_pending`` bounds the
requests unfinished on the endpoint), the stop signal (pause/cancel), ``Plan.requests(start)``
(resuming a dataset where it stopped), and the journal intent (QUEUED rows: uploaded, journaled,
not yet invoked).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait

from ..context import Context
from ..errors import SubmissionError, SubmissionInterrupted, ValidationError
from ..journal.store import Claim
from ..records import BatchRecord
from .endpoint_check import EndpointCheck
from .plans import Plan
from .prepare import PreparedRequest, Preparer, continues
from .resubmission import ResubmissionPlan
from .sender import NOT_SENT_INTERRUPTED, Outcome, Sender, StopSignal

log = logging.getLogger(__name__)

WAIT_SLICE_S = 0.05  # the longest a pending interrupt waits to be raised in the calling thread


class Window:
    """How many requests a run holds at once: taken from the plan, journaled, and queued or in flight
    on the pool (``limit`` None: the whole plan at once). It is refilled once half of it is free, so
    each refill is one journal transaction of many rows while the pool stays busy."""

    def __init__(self, limit: int | None):
        self.limit = limit

    def room(self, held: int) -> int | None:
        """How many requests to take now (None: all there are; 0: none)."""
        if self.limit is None:
            return None
        return self.limit - held if held <= self.limit // 2 else 0


class Tally:
    """How the requests of a run ended (worker threads count; the counts only feed messages)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[Outcome] = Counter()

    def add(self, outcome: Outcome, n: int = 1) -> None:
        with self._lock:
            self._counts[outcome] += n

    def __getitem__(self, outcome: Outcome) -> int:
        with self._lock:
            return self._counts[outcome]


class _Run:
    """One run's state, held by the calling thread: the plan's source, the window and what it holds,
    the stop signal, and how the requests ended."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.stop, self.tally, self.window = StopSignal(plan.paused), Tally(), Window(plan.window)
        self.source = plan.requests(plan.start)
        self.next_position = plan.start  # the position of the next request the plan yields
        self.batch = plan.batch  # journaled with the first requests
        self.finished: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()  # filled from worker threads
        self.held: dict[Future[Outcome], PreparedRequest] = {}  # on the pool, not yet seen finished
        self.taken: list[PreparedRequest] = []  # the last requests taken from the plan...
        self.handed = 0                         # ...and how many of them are on the pool
        self.exhausted = False
        self.failure: ValidationError | None = None
        self.shown = plan.progress()

    def wants_more(self) -> bool:
        return (not self.exhausted and not self.stop.stopped and not self.stop.held
                and self.window.room(len(self.held)) != 0)

    def position(self) -> int:
        """Where reading the plan again would lose nothing: its oldest request still in flight, else the next."""
        held = [r.record.batch_index for r in self.held.values() if r.record.batch_index is not None]
        return min([*held, self.next_position])

    def report_position(self) -> None:
        if self.plan.on_position is not None:
            self.plan.on_position(None if self.exhausted and not self.held else self.position())

    def advance(self, request: PreparedRequest) -> None:
        if self.shown is not None:
            self.shown(request.record.row_count or 0)


class Submitter:
    """Runs plans (and resubmissions) from the client's pool."""

    def __init__(self, ctx: Context, preparer: Preparer, on_submitted: Callable[[], None] = lambda: None):
        self.ctx = ctx
        self.preparer = preparer
        self.sender = Sender(ctx)
        self.endpoints = EndpointCheck(ctx)
        self.on_submitted = on_submitted

    def run(self, plan: Plan) -> Tally:
        """Open the plan, then journal and send its requests; returns how they ended.

        Raises:
            ValidationError: from the plan (nothing sent when it comes from ``open()``; from a streamed
                plan's later request, after the requests before it finished).
            SubmissionInterrupted: Ctrl-C (after journaling what happened).
            SubmissionError: a streamed plan stopped by a failure every request would meet; the parts not
                yet read are not journaled, and re-running with ``plan.continue_with`` continues.
        """
        self.open(plan)
        run = _Run(plan)
        try:
            self._pump(run)
        except KeyboardInterrupt:
            self._interrupt(run)
        finally:
            if run.shown is not None:
                run.shown.close(ok=not run.stop.stopped and run.failure is None)
            self.on_submitted()
        run.report_position()
        self._conclude(run)
        return run.tally

    @staticmethod
    def open(plan: Plan) -> None:
        """``plan.open()`` once: what must be read and checked before anything is sent.

        Raises:
            ValidationError: nothing has been sent or journaled.
        """
        if not plan.is_open:
            plan.open()
            plan.is_open = True

    def _pump(self, run: _Run) -> None:
        """Fill the window and account for what finishes until the plan is exhausted or the run stops.

        A method of its own, called inside ``run``'s try, rather than a loop opening that try: CPython
        3.11 can raise a pending KeyboardInterrupt (from ``_thread.interrupt_main()``) at a loop's back
        edge with the location of the instruction before the loop head, outside a try that the loop
        opens — and the interrupt would escape the handler (seen in tests)."""
        while True:
            if run.wants_more():
                self._fill(run)
            if not run.held:
                if run.exhausted or run.stop.stopped or run.stop.held:
                    break
                continue
            try:
                done = run.finished.get(timeout=WAIT_SLICE_S)
            except queue.Empty:
                continue
            request = run.held.pop(done)
            self._account(done, run)
            run.advance(request)

    def resubmit(self, inference_ids: Iterable[str], *, skip_impossible: bool | None = None) -> list[str]:
        """Send ERROR, FAILED or EXPIRED invocations again; returns the ids now carrying them.

        Args:
            inference_ids: the invocations to send again (a resubmitted one: its latest attempt).
            skip_impossible: leave those that cannot be resubmitted (their payload never reached S3 and is
                not held any more) ERROR with the reason, and send the others. Default: skip when several
                ids are given, raise for one.

        Raises:
            ValidationError: an unknown id; one that cannot be resubmitted (unless skipped).
        """
        plan = ResubmissionPlan(self.preparer, inference_ids, self.sender.held, skip_impossible)
        self.run(plan)
        self.sender.release([r.inference_id for r in plan.prepared])
        return plan.carrying()

    # --- steps -------------------------------------------------------------------------------

    def _journal_intent(self, requests: list[PreparedRequest], batch: BatchRecord | None) -> None:
        """Journal new rows before anything is uploaded, and claim existing ones (compare-and-set),
        so two threads or processes sending the same id invoke it once."""
        journal = self.ctx.journal
        new = [r for r in requests if r.existing is None]
        inserted = journal.add_missing([r.record for r in new], batch) if new or batch is not None else set()
        lost = [r for r in new if r.inference_id not in inserted]
        if lost:  # another thread or process journaled the same id in the meantime
            rows = journal.get_many([r.inference_id for r in lost])
            try:
                for request in lost:
                    request.existing = rows[request.inference_id]
                    request.done = not continues(self.ctx, request.record, request.existing)
            except ValidationError:
                journal.forget(inserted)  # ours, not sent yet: leave no orphan rows
                raise
        claims = [Claim(r.inference_id, r.existing.status, r.existing.owner_pid, r.record.submitted_at,
                        r.record.input_location) for r in requests if r.existing is not None and not r.done]
        claimed = journal.claim_for_submission(claims) if claims else set()
        for request in requests:
            if request.existing is not None and not request.done and request.inference_id not in claimed:
                request.done = True  # another thread or process got there first: leave it to that one

    def _fill(self, run: _Run) -> None:
        """Take what the window has room for from the plan, journal it, and hand it to the pool."""
        room = run.window.room(len(run.held))
        run.taken, run.handed = [], 0
        try:
            run.taken = list(itertools.islice(run.source, room))
            run.next_position += len(run.taken)
            run.exhausted = room is None or len(run.taken) < room
            self.endpoints.require(r.record.endpoint_name for r in run.taken if not r.done)  # before any write
            if run.taken or run.batch is not None:
                self._journal_intent(run.taken, run.batch)
                run.batch = None
        except ValidationError as exc:  # the plan cannot make its next request: send no more
            run.failure, run.exhausted, run.taken = exc, True, []
        except Exception as exc:  # e.g. the journal cannot be written: nothing more may start
            run.stop.crashed(exc)
            run.exhausted, run.taken = True, []
        for request in run.taken:
            if request.done:
                run.tally.add(Outcome.SKIPPED)
                run.advance(request)
            else:
                # Held before the pool sees it: wherever a Ctrl-C lands in this hand-off, the request is
                # either not held (never sent) or held with a future that is cancelled or runs to the end.
                future: Future[Outcome] = Future()
                run.held[future] = request
                future.add_done_callback(run.finished.put)
                self.ctx.pool.submit(_send_unless_cancelled, future, self.sender.send, request, run.stop,
                                     run.plan.hold)
            run.handed += 1
        if run.taken:
            self.on_submitted()
            run.report_position()

    @staticmethod
    def _account(done: Future[Outcome], run: _Run) -> None:
        error = done.exception()
        if error is not None:
            run.stop.crashed(error)  # the sender journaled the row ERROR if it could
            return
        run.tally.add(done.result())

    def _interrupt(self, run: _Run) -> None:
        """Ctrl-C: nothing that has not started is sent; what is in flight finishes; say what happened. A
        job's QUEUED requests stay QUEUED and its job is paused: ``batch.resume()`` sends them."""
        if run.plan.paused is not None:
            run.plan.paused.set()  # the job thread invokes nothing more of this batch
        run.stop.interrupt()  # requests that start from now on journal themselves as not sent
        held = {id(request) for request in run.held.values()}
        for request in run.taken[run.handed:]:  # journaled (perhaps) but never given to the pool
            if id(request) not in held and not request.done and self.sender.not_sent(request, NOT_SENT_INTERRUPTED):
                run.tally.add(Outcome.INTERRUPTED)
        for future, request in run.held.items():
            if future.cancel() and self.sender.not_sent(request, NOT_SENT_INTERRUPTED):
                run.tally.add(Outcome.INTERRUPTED)
        in_flight = [f for f in run.held if not f.cancelled()]
        try:
            _wait_all(in_flight)  # in-flight requests finish and are journaled
        except KeyboardInterrupt:
            log.warning("stopped waiting for %d in-flight request(s); they journal themselves when done",
                        sum(1 for f in in_flight if not f.done()))
        for future in in_flight:
            if future.done():
                self._account(future, run)
        plan, tally = run.plan, run.tally
        sent, not_sent = tally[Outcome.SENT] + tally[Outcome.QUEUED], tally[Outcome.INTERRUPTED]
        log.info("submission interrupted: %d sent, %d not sent", sent, not_sent)
        batch_id = plan.batch.batch_id if plan.batch else None
        if plan.streamed:  # the parts not yet read are not journaled: re-running the call continues
            done = sent + tally[Outcome.SKIPPED]
            raise SubmissionInterrupted(sent=done, not_sent=plan.total - done, total=plan.total, batch_id=batch_id,
                                        continue_with=plan.continue_with) from None
        raise SubmissionInterrupted(sent=sent, not_sent=not_sent, total=plan.total - tally[Outcome.SKIPPED],
                                    batch_id=batch_id, inference_id=plan.only_id) from None

    @staticmethod
    def _conclude(run: _Run) -> None:
        """Raise what ended the run early, once nothing of it is in flight any more."""
        stop, plan = run.stop, run.plan
        plan.stopped_by = stop.problem
        if stop.crash is not None:  # a bug or a journal that cannot be written: say so, loudly
            raise stop.crash
        if run.failure is not None:
            raise run.failure
        if stop.problem is not None and plan.streamed and not run.exhausted:
            sent = run.tally[Outcome.SENT] + run.tally[Outcome.QUEUED] + run.tally[Outcome.SKIPPED]
            raise SubmissionError(
                f"Stopped after {sent} of {plan.total} requests: {stop.problem.message} Once that is fixed, re-run "
                f"with inference_id={plan.continue_with!r} to send the other {plan.total - sent} (nothing is sent "
                "twice).", code=stop.problem.code, batch_id=plan.batch.batch_id if plan.batch else None)


def _send_unless_cancelled(future: Future[Outcome], send: Callable[[PreparedRequest, StopSignal, bool], Outcome],
                           request: PreparedRequest, stop: StopSignal, hold: bool) -> None:
    """On a pool thread: ``send`` the request unless ``future`` was cancelled first; what it returns or
    raises (a BaseException too, as the pool's own futures do) goes to ``future``."""
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(send(request, stop, hold))
    except BaseException as exc:
        future.set_exception(exc)


def _wait_all(futures: list[Future[Outcome]]) -> None:
    """Wait for every future, in slices, so that a further interrupt is raised promptly."""
    pending = set(futures)
    while pending:
        pending = wait(pending, timeout=WAIT_SLICE_S).not_done
