"""Handles: thin views over journal rows. State lives in the journal; work in the submitter and
the tracker, which a handle reaches through :class:`HandleParts` (never through the client)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import numbers
import os
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import Context
from .display.shown import Gallery, Shown, show_batch, show_invocation
from .endpoints.logs import LogLine
from .endpoints.monitor import EndpointMonitor
from .errors import NotTracked, OutputMissing, SubmissionError, ValidationError
from .journal.activity import Scope
from .journal.frames import parts_frame, timeline_frame
from .records import FINISHED, RESUBMITTABLE, UNFINISHED, ErrorsMode, InvocationRecord, JobState, Status, statuses_of
from .results import downloads
from .results import loading as results
from .results import writer as results_writer
from .submission.jobs import Jobs
from .submission.runner import Submitter
from .tracking.tracker import Tracker
from .tracking.watch import DoneWatch

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class HandleParts:
    """What a handle needs, wired once by the client: the context, the tracker (refresh, wait),
    the submitter (resubmit) and the endpoint monitor (endpoint status, log lines)."""

    ctx: Context
    tracker: Tracker
    submitter: Submitter
    monitor: EndpointMonitor
    jobs: Jobs
    watch: DoneWatch = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "watch", DoneWatch(self.tracker.bus))

    def invocation(self, inference_id: str) -> Invocation:
        """A handle on a tracked invocation.

        Raises:
            NotTracked: the journal has no row for it (the message says how to attach it).
        """
        if not isinstance(inference_id, str) or self.ctx.journal.get(inference_id) is None:
            raise NotTracked(f"Invocation {inference_id!r} is not tracked by this journal ({self.ctx.journal.path}): "
                             "ids are tracked when they are submitted through this client (or another one on the "
                             "same journal). To follow one submitted elsewhere (the AWS CLI, an SDK), attach it: "
                             "client.attach(endpoint, inference_id, output_location) or %sm_async attach ENDPOINT "
                             "ID OUTPUT_LOCATION.", parameter="inference_id")
        return Invocation(self, inference_id)

    def follow(self) -> None:
        """Something waits for finishes (a callback, a future, as_completed): poll in the background."""
        self.tracker.start()

    def batch(self, batch_id: str) -> InvocationBatch:
        """A handle on a tracked batch.

        Raises:
            NotTracked: the journal has no such batch.
        """
        return InvocationBatch(self, batch_id)


def _check_limit(limit: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"limit must be a positive integer, not {limit!r}.", parameter="limit")


def _freq_seconds(freq: object) -> float:
    """A fixed pandas frequency ("30s", "1min", "5min", "1h", a Timedelta) in seconds.

    Raises:
        ValidationError: not a fixed frequency of at least one second.
    """
    import pandas as pd

    try:
        seconds = pd.Timedelta(pd.tseries.frequencies.to_offset(freq)).total_seconds()
    except (TypeError, ValueError):
        raise ValidationError(f"freq must be a fixed pandas frequency such as '1min', '5min' or '1h', not "
                              f"{freq!r}.", parameter="freq") from None
    if not seconds >= 1:
        raise ValidationError(f"freq must be at least one second, not {freq!r}.", parameter="freq")
    return seconds


def _when(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


def _check_callable(fn: object) -> None:
    if not callable(fn):
        raise ValidationError(f"fn must be callable (it is called with the handle), not {fn!r}.", parameter="fn")


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    # numbers.Real: numpy's integers and floats too (a bool is a mistake, not 1 s)
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not 0 <= float(timeout) < float("inf"):
        raise ValidationError(f"timeout must be a number of seconds >= 0 (or None to wait as long as it takes), not "
                              f"{timeout!r}.", parameter="timeout")
    return float(timeout)


def _future_of(handle: Any, add_callback: Callable[[Callable[[Any], Any]], None]) -> concurrent.futures.Future[Any]:
    """A Future resolved with ``handle.result()`` (or its exception) once the handle is done."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()

    def settle(done: Any) -> None:
        try:
            future.set_result(done.result())
        except BaseException as exc:  # the Future carries it to whoever awaits
            future.set_exception(exc)

    add_callback(settle)
    return future


RATE_WINDOW_S = 300.0  # batch.rate_per_min: what finished over the last five minutes
_PAGE = 1000            # as_completed reads finished rows this many at a time


class Invocation:
    """One async inference. ``await inv`` waits in a worker thread and returns ``inv.result()``."""

    def __init__(self, parts: HandleParts, inference_id: str):
        self._parts = parts
        self.inference_id = inference_id

    @property
    def record(self) -> InvocationRecord:
        record = self._parts.ctx.journal.get(self.inference_id)
        if record is None:
            raise NotTracked(f"Invocation {self.inference_id} is no longer tracked by this journal "
                             f"({self._parts.ctx.journal.path}): it was forgotten (its S3 objects stay).",
                             parameter="inference_id")
        return record

    # The journal row, attribute by attribute.
    label = property(lambda self: self.record.label)
    endpoint_name = property(lambda self: self.record.endpoint_name)
    input_location = property(lambda self: self.record.input_location)
    output_location = property(lambda self: self.record.output_location)
    failure_location = property(lambda self: self.record.failure_location)
    failure_reason = property(lambda self: self.record.failure_reason)
    error = property(lambda self: self.record.error)
    submitted_at = property(lambda self: _when(self.record.submitted_at))
    finished_at = property(lambda self: _when(self.record.finished_at))
    latency = property(lambda self: self.record.latency)

    @property
    def status(self) -> Status:
        return self.record.status

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    @property
    def expires_at(self) -> dt.datetime | None:
        """When the service's request TTL and invocation timeout have both run out (UTC): it must have
        finished by then. None once it is finished."""
        record = self.record
        return None if record.status in FINISHED else _when(record.service_deadline())

    def logs(self, limit: int = 100) -> list[str]:
        """The CloudWatch Logs lines of ``/aws/sagemaker/Endpoints/{endpoint}`` that carry this inference id,
        oldest first (at most ``limit``; [] when the endpoint has no log group yet). FilterLogEvents
        pages until ``limit`` matching lines are found, at most 20 requests. SageMaker's own containers
        do not stamp the id on their lines: a model must log it (the local stack does) to be found.

        Raises:
            ValidationError: ``limit`` is not a positive integer.
            AwsError: the logs could not be read; ``kind="access_denied"`` names logs:FilterLogEvents.
        """
        _check_limit(limit)
        return self._parts.monitor.log_messages(self.record, limit)

    def log_lines(self, limit: int = 100) -> list[LogLine]:
        """As :meth:`logs`, with each line's timestamp and log stream (``AllTraffic/{instance-id}``).

        Raises:
            ValidationError: ``limit`` is not a positive integer.
            AwsError: the logs could not be read.
        """
        _check_limit(limit)
        return self._parts.monitor.logs(self.record, limit)

    def refresh(self) -> Status:
        """Check S3 now (one or two HEAD requests) and return the status."""
        if not self.done:
            self._parts.tracker.refresh([self.inference_id])
        return self.status

    def wait(self, timeout: float | None = None) -> Invocation:
        """Block until finished (TimeoutError after ``timeout`` s; the invocation keeps running)."""
        self._parts.tracker.wait_for([self.inference_id], timeout)
        return self

    def _finished_record(self) -> InvocationRecord:
        record = self.record
        if not record.status.finished:
            self.refresh()
            record = self.record
        return record

    def result(self, **reader_kwargs: Any) -> pd.DataFrame:
        """The output as a DataFrame (raises InferenceFailed/InferenceExpired/ResultNotReady)."""
        return results.load_frame(self._parts.ctx, self._finished_record(), **reader_kwargs)

    def raw(self) -> bytes:
        """The output object's bytes, whatever its content type."""
        return results.fetch(self._parts.ctx, self._finished_record())[0]

    def show(self) -> Shown:
        """The output, shown by its media type (display it in a cell: images as images, audio and video
        as players, JSON pretty-printed, text wrapped, tables as their first rows, anything else as
        its size and first bytes), or the status and reason of an invocation without one. Media
        larger than ``display.previews.MEDIA_LIMIT`` (2 MiB) are described, not read:
        :meth:`download` saves them.

        Raises:
            OutputMissing: the output was removed from S3. AwsError: S3 refused.
        """
        return show_invocation(self._parts.ctx, self.record, time.time())

    def download(self, folder: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """The raw output as a file in ``folder``, streamed, named as ``batch.download`` names it.

        Raises:
            InferenceFailed / InferenceExpired / ResultNotReady / SubmissionError: there is no output.
            ValidationError: ``folder`` is not a usable folder, or ``overwrite`` is not a bool.
            OutputMissing: the output was removed from S3. AwsError: S3 refused.
        """
        record = self._finished_record()
        results.raise_unless_completed(record)
        [path] = downloads.download(self._parts.ctx, [record], folder, overwrite=overwrite)
        return path

    def resubmit(self) -> Invocation:
        """Send an ERROR, FAILED or EXPIRED invocation again, reusing its input in S3."""
        [inference_id] = self._parts.submitter.resubmit([self.inference_id])
        return Invocation(self._parts, inference_id)

    def forget(self) -> None:
        self._parts.ctx.journal.forget([self.inference_id])

    def _settled(self) -> bool:
        """Finished for good: a resubmitted attempt is settled by the attempt carrying it."""
        record = self._parts.ctx.journal.get(self.inference_id)
        return record is None or record.status in FINISHED

    def add_done_callback(self, fn: Callable[[Invocation], Any]) -> None:
        """Call ``fn(inv)`` once this invocation is finished: at once (in this thread) if it is, else on the
        client's callback thread once the tracker's poller (which this starts) notices. ``fn`` runs outside every
        lock and off the poller, so it may call ``inv.result()`` or wait for other handles; an exception it
        raises is logged.

        Raises:
            ValidationError: ``fn`` is not callable.
        """
        _check_callable(fn)
        if not self._settled():
            self._parts.follow()
        self._parts.watch.add(self._settled, lambda: fn(self))

    def future(self) -> concurrent.futures.Future[pd.DataFrame]:
        """A ``concurrent.futures.Future`` of :meth:`result` (its exception when there is none);
        ``asyncio.wrap_future`` makes it awaitable."""
        return _future_of(self, self.add_done_callback)

    def __await__(self) -> Generator[Any, None, pd.DataFrame]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(None, lambda: self.wait().result()).__await__()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Invocation) and other.inference_id == self.inference_id

    def __hash__(self) -> int:
        return hash(self.inference_id)

    def __repr__(self) -> str:
        record = self._parts.ctx.journal.get(self.inference_id)
        if record is None:
            return f"<Invocation {self.inference_id} (forgotten)>"
        label = f" label={record.label!r}" if record.label else ""
        return f"<Invocation {self.inference_id} {record.status.value} endpoint={record.endpoint_name!r}{label}>"


class InvocationBatch:
    """Many invocations submitted together; results come back as one DataFrame in input order."""

    def __init__(self, parts: HandleParts, batch_id: str):
        self._parts = parts
        self.batch_id = batch_id
        record = parts.ctx.journal.get_batch(batch_id) if isinstance(batch_id, str) else None
        if record is None:
            raise NotTracked(f"Batch {batch_id!r} is not tracked by this journal ({parts.ctx.journal.path}): batches "
                             "are tracked when they are submitted through this client (or another one on the same "
                             "journal), until all their invocations are forgotten.", parameter="batch_id")
        self.record = record

    label = property(lambda self: self.record.label)
    endpoint_name = property(lambda self: self.record.endpoint_name)

    def parts(self) -> list[InvocationRecord]:
        """The current row of each slot: a resubmitted slot shows its newest attempt."""
        return self._parts.ctx.journal.batch_parts(self.batch_id)

    @property
    def invocations(self) -> list[Invocation]:
        return [Invocation(self._parts, r.inference_id) for r in self.parts()]

    @property
    def inference_ids(self) -> list[str]:
        return [r.inference_id for r in self.parts()]

    def __len__(self) -> int:
        return len(self.parts())

    def __iter__(self) -> Iterator[Invocation]:
        return iter(self.invocations)

    def __getitem__(self, position: int) -> Invocation:
        return self.invocations[position]

    def status_counts(self) -> dict[str, int]:
        """How many parts are in each status, e.g. {"PENDING": 3, "COMPLETED": 7}."""
        counts = Counter(r.status.value for r in self.parts())
        return {s.value: counts[s.value] for s in Status if counts[s.value]}

    @property
    def unsent(self) -> int:
        """How many of the batch's requests were never sent: its submission (a dataset read in a stream)
        stopped part-way (Ctrl-C, expired credentials). Re-running the same call with its inference id
        prefix sends them; until then ``done`` is False and ``result()`` says they are missing."""
        return len(results.unsent_slots(self.record, self.parts()))

    @property
    def job_state(self) -> JobState | None:
        """What the batch's job is doing (RUNNING, PAUSED, CANCELLED, DONE; a RUNNING job whose kernel ended is
        PAUSED), or None for a batch sent at once."""
        batch = self._parts.ctx.journal.get_batch(self.batch_id)
        return None if batch is None else self._parts.jobs.state(batch)

    @property
    def done(self) -> bool:
        parts = self.parts()
        if not all(r.status in FINISHED for r in parts) or results.unsent_slots(self.record, parts):
            return False
        return not self._retrying(parts)

    def _retrying(self, parts: list[InvocationRecord]) -> bool:
        """Some finished part is still to be sent again by the job (retries)."""
        batch = self._parts.ctx.journal.get_batch(self.batch_id)
        if batch is None or not batch.retries:
            return False
        return any(self._parts.jobs.will_retry(batch, r) for r in parts if r.status in (Status.EXPIRED, Status.FAILED))

    # --- the job: pace, pause, resume, cancel ----------------------------------------------------

    @property
    def rate_per_min(self) -> float | None:
        """Parts finished per minute over the last five minutes (since the first finish when more recent);
        None until something finished."""
        finished = [r.finished_at for r in self.parts() if r.status in FINISHED and r.status is not Status.ERROR
                    and r.finished_at is not None]
        if not finished:
            return None
        now = self._parts.ctx.clock()
        start = max(now - RATE_WINDOW_S, min(r for r in finished))
        recent = sum(1 for at in finished if at >= start)
        span = max(now - start, 1.0)
        return recent * 60.0 / span

    @property
    def eta(self) -> dt.datetime | None:
        """When the batch should be done at the current pace (UTC); None until something finished, or when
        nothing finished lately."""
        rate = self.rate_per_min
        if not rate:
            return None
        parts = self.parts()
        remaining = sum(1 for r in parts if r.status in UNFINISHED) + len(results.unsent_slots(self.record, parts))
        return _when(self._parts.ctx.clock() + remaining * 60.0 / rate)

    def pause(self) -> bool:
        """Stop invoking (and reading) this batch: QUEUED parts wait; what is on the endpoint runs on. Returns
        whether it was running.

        Raises:
            ValidationError: the batch was sent at once (no job to pause).
        """
        return self._parts.jobs.pause(self.batch_id)

    def resume(self) -> bool:
        """Continue a paused job in this kernel (also one paused by a kernel restart): QUEUED parts are invoked
        as the window allows, a dataset is read on from where it stopped. Returns at once; False when there
        was nothing to resume.

        Raises:
            ValidationError: the batch was sent at once; or queued inputs were removed from S3 (nothing is sent).
        """
        return self._parts.jobs.resume(self.batch_id)

    def cancel(self) -> int:
        """QUEUED parts become ERROR "cancelled, not sent" and the inputs this client uploaded for them are
        removed (a user's own objects are never touched); the source is read no further. What is already on the
        endpoint runs on (AWS has no cancel). Returns how many parts were cancelled.

        Raises:
            ValidationError: the batch was sent at once (nothing held back to cancel).
        """
        return self._parts.jobs.cancel(self.batch_id)

    # --- results as they come --------------------------------------------------------------------

    def _paused_idle(self) -> bool:
        """Paused with parts QUEUED and nothing on the endpoint: waiting longer cannot help."""
        if self.job_state is not JobState.PAUSED:
            return False
        journal = self._parts.ctx.journal
        return (journal.batch_count(self.batch_id, [Status.QUEUED]) > 0
                and journal.batch_count(self.batch_id, [Status.PENDING, Status.SUBMITTING]) == 0)

    def _raise_if_paused(self) -> None:
        if self._paused_idle():
            queued = self._parts.ctx.journal.batch_count(self.batch_id, [Status.QUEUED])
            raise SubmissionError(f"Batch {self.label or self.batch_id} is paused with {queued} queued request(s): "
                                  "batch.resume() sends them (or cancel() drops them).", batch_id=self.batch_id)

    def _reading(self) -> bool:
        return self.batch_id in self._parts.jobs.active() and self.job_state is JobState.RUNNING

    def as_completed(self, timeout: float | None = None) -> Iterator[Invocation]:
        """Each part as it finishes, once, in finishing order (a retried part: its last attempt). Ends when the
        batch is done; parts that finished before the call come first.

        Raises:
            ValidationError: a bad ``timeout``. TimeoutError: parts still unfinished after ``timeout`` s.
            SubmissionError: the batch is paused with queued parts and nothing running (resume() it).
        """
        limit = _check_timeout(timeout)
        deadline = None if limit is None else time.monotonic() + limit
        journal, jobs = self._parts.ctx.journal, self._parts.jobs
        seen: set[str] = set()
        deferred: set[str] = set()  # finished attempts the job will send again
        cursor = float("-inf")
        self._parts.follow()
        while True:
            found = journal.finished_since(self.batch_id, cursor, _PAGE)
            fresh = [iid for _, iid in found if iid not in seen]
            if found:
                cursor = found[-1][0]
            ids = list(dict.fromkeys([*deferred, *fresh]))
            batch = journal.get_batch(self.batch_id)
            rows = journal.get_many(ids) if ids else {}
            for iid in ids:
                record = rows.get(iid)
                deferred.discard(iid)
                if record is not None and record.resubmitted_as is None and record.status in FINISHED \
                        and batch is not None and jobs.will_retry(batch, record):
                    deferred.add(iid)  # its next attempt is the one to yield
                    continue
                seen.add(iid)
                if record is not None and record.resubmitted_as is None and record.status in FINISHED:
                    yield Invocation(self._parts, iid)
            if len(found) == _PAGE and fresh:
                continue  # more finished already: no waiting
            if not deferred and journal.batch_count(self.batch_id, UNFINISHED) == 0 and not self._reading():
                if all(iid in seen for _, iid in journal.finished_since(self.batch_id, cursor, _PAGE)):
                    return
                continue
            self._raise_if_paused()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"Batch {self.label or self.batch_id}: parts still unfinished after {timeout} s; "
                                   "they keep running: call as_completed() again.")
            self._parts.tracker.bus.wait(0.5 if remaining is None else min(0.5, remaining))

    def iter_results(self, errors: ErrorsMode = "raise", timeout: float | None = None,
                     **reader_kwargs: Any) -> Iterator[pd.DataFrame]:
        """One DataFrame per finished part, as parts finish, indexed like its input rows (the DataFrame's
        index, the dataset's row numbers, the payload's position) when the part returned one row per input
        row. ``errors="skip"`` leaves out parts without a result.

        Raises:
            ValidationError: a bad ``errors`` or ``timeout``. TimeoutError: after ``timeout`` s.
            InferenceFailed / InferenceExpired / SubmissionError / OutputMissing: a part without a result
                (``errors="raise"``).
        """
        results.check_errors_mode(errors)
        batch = self.record
        for inv in self.as_completed(timeout):
            record = inv.record
            if record.status is not Status.COMPLETED:
                if errors == "raise":
                    results.raise_unless_completed(record)
                continue
            try:
                yield results.load_part(self._parts.ctx, batch, record, **reader_kwargs)
            except OutputMissing:
                if errors == "raise":
                    raise

    def add_done_callback(self, fn: Callable[[InvocationBatch], Any]) -> None:
        """Call ``fn(batch)`` once the batch is done: at once (in this thread) if it is, else on the client's
        callback thread. ``fn`` runs outside every lock and off the tracker's poller (it may wait for other
        handles); an exception it raises is logged.

        Raises:
            ValidationError: ``fn`` is not callable.
        """
        _check_callable(fn)
        if not self.done:
            self._parts.follow()
        self._parts.watch.add(lambda: self.done, lambda: fn(self))

    def future(self) -> concurrent.futures.Future[pd.DataFrame]:
        """A ``concurrent.futures.Future`` of :meth:`result` (its exception when there is none);
        ``asyncio.wrap_future`` makes it awaitable."""
        return _future_of(self, self.add_done_callback)

    def refresh(self) -> dict[str, int]:
        ids = [r.inference_id for r in self.parts() if r.status is Status.PENDING]
        if ids:
            self._parts.tracker.refresh(ids)
        return self.status_counts()

    def wait(self, timeout: float | None = None) -> InvocationBatch:
        """Block until every part is finished (a job's queued and retried parts too).

        Raises:
            TimeoutError: after ``timeout`` s (the parts keep running). SubmissionError: the batch is paused
                with queued parts and nothing running (resume() it).
        """
        limit = _check_timeout(timeout)
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._raise_if_paused()
            if self.record.job_state is None:
                self._parts.tracker.wait_for(self.inference_ids, remaining)
                return self
            parts = self.parts()
            waiting = [r.inference_id for r in parts if r.status in (Status.PENDING, Status.SUBMITTING)]
            if not waiting and self.done:
                return self
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"Batch {self.label or self.batch_id}: {sum(r.status in UNFINISHED for r in parts)} "
                                   f"part(s) still unfinished after {timeout} s; they keep running.")
            self._parts.follow()
            self._parts.tracker.bus.wait(0.5 if remaining is None else min(0.5, remaining))

    def result(self, errors: ErrorsMode = "raise", **reader_kwargs: Any) -> pd.DataFrame:
        """All outputs as one DataFrame. errors="skip" leaves out parts without a result."""
        results.check_errors_mode(errors)
        parts = self.parts()
        if any(r.status is Status.PENDING for r in parts):
            self.refresh()
            parts = self.parts()
        return results.load_batch(self._parts.ctx, self.record, parts, errors, **reader_kwargs)

    def to_frame(self) -> pd.DataFrame:
        """One row per invocation (the current attempt of each part), in input order: inference_id,
        input_location, status, output_location, failure_location, content_type, output_bytes,
        submitted_at, finished_at, latency_s, failure_reason (and error, batch_index)."""
        return parts_frame(self.parts())

    def write_results(self, dest: str | os.PathLike[str], errors: ErrorsMode = "raise", *,
                      overwrite: bool = False) -> str:
        """Stream the outputs into Parquet (``x.parquet``: one file; a folder or ``s3://`` prefix: a
        dataset of ``part-NNNNN.parquet`` files), in input order, without holding them all in memory;
        returns ``dest``. When each request returned one row per input row, the written rows are the
        input's, in order.

        An existing file, or a non-empty folder or prefix, is refused unless ``overwrite=True``; then
        the file, or the folder's ``part-NNNNN.parquet`` files, are replaced (other files are kept).
        Nothing appears at ``dest`` until every part was written (a temporary name renamed at the end;
        on S3, multipart uploads completed at the end); on any error what this call wrote is removed
        and the previous content is left as it was.

        Raises:
            ValidationError: a bad ``dest``, ``errors`` or ``overwrite``; an existing destination
                without ``overwrite=True``.
            InferenceFailed / InferenceExpired / ResultNotReady / SubmissionError: a part has no result
                (``errors="skip"`` leaves such parts out). DecodeError: an output that does not convert
                to a table or does not fit the earlier parts' columns. OutputMissing. AwsError: S3 refused.
        """
        parts = self.parts()
        if any(r.status is Status.PENDING for r in parts):
            self.refresh()
            parts = self.parts()
        return results_writer.write(self._parts.ctx, self.record, parts, dest, errors, overwrite=overwrite)

    def download(self, folder: str | os.PathLike[str], overwrite: bool = False) -> list[Path]:
        """The completed parts' raw outputs as files in ``folder``, streamed and concurrent, named after
        their input objects; existing files are kept unless ``overwrite``, and a file that already holds
        its output (an earlier download) is kept and not downloaded again. Returns the paths in order.

        Raises:
            ValidationError: ``folder`` is not a usable folder, ``overwrite`` is not a bool, or a
                target name is taken by something that is not a file (checked before any download).
            OutputMissing: an output was removed from S3. AwsError: S3 refused. Raised once every other
                part is downloaded (or, after a failure every part would meet, cancelled); the message
                names every failed part, ``.failures`` holds them and ``.paths`` the files in place.
        """
        return downloads.download(self._parts.ctx, self.parts(), folder, overwrite=overwrite)

    def show(self, limit: int = 24) -> Gallery:
        """The first ``limit`` parts as a gallery (display it in a cell): images in a grid with their
        labels, audio and video as players, other outputs in brief, parts without an output with
        their status. Each output is bounded as :meth:`Invocation.show` bounds it, and the media one
        gallery inlines by ``display.shown.GALLERY_BYTES`` (8 MiB); :meth:`download` saves the rest.

        Raises:
            ValidationError: ``limit`` is not a positive integer.
        """
        _check_limit(limit)
        ctx = self._parts.ctx
        return show_batch(ctx, f"Batch {self.label or self.batch_id}", self.parts(), limit, time.time())

    def timeline(self, freq: str = "1min") -> pd.DataFrame:
        """The batch over time, one row per interval of ``freq`` (a fixed pandas frequency) from its
        first submission to its last event (to now while parts are unfinished), indexed by the
        interval's start (UTC): ``submitted``, ``completed``, ``failed``, ``expired`` in the interval,
        ``pending`` and ``queued`` at its end. Every attempt of a resubmitted part counts.
        Computed in SQL over the journal (``journal.activity`` defines each column).

        Raises:
            ValidationError: ``freq`` is not a fixed frequency of at least one second, or makes more
                than 100,000 intervals.
        """
        step = _freq_seconds(freq)
        ctx = self._parts.ctx
        return timeline_frame(ctx.journal, Scope(ctx.origin, batch_id=self.batch_id), step, time.time())

    def resubmit(self, statuses: frozenset[Status] | set[Status] | Status | str = RESUBMITTABLE) -> list[Invocation]:
        """Send the parts in ``statuses`` (default: ERROR, FAILED, EXPIRED) again, reusing their inputs.

        Raises:
            ValidationError: ``statuses`` holds something that is not a status.
        """
        wanted = statuses_of(statuses)
        ids = [r.inference_id for r in self.parts() if r.status in wanted]
        if not ids:
            return []
        return [Invocation(self._parts, i) for i in self._parts.submitter.resubmit(ids, skip_impossible=True)]

    def __await__(self) -> Generator[Any, None, pd.DataFrame]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(None, lambda: self.wait().result()).__await__()

    def __repr__(self) -> str:
        counts = ", ".join(f"{k.lower()}={v}" for k, v in self.status_counts().items())
        unsent = self.unsent
        counts += f", never sent={unsent}" if unsent else ""
        label = f" label={self.label!r}" if self.label else ""
        return f"<InvocationBatch {self.batch_id}{label} endpoint={self.endpoint_name!r} {counts}>"
