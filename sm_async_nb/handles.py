"""Handles: thin views over journal rows. State lives in the journal; work in the submitter and
the tracker, which a handle reaches through :class:`HandleParts` (never through the client)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import Context
from .display.shown import Gallery, Shown, show_batch, show_invocation
from .endpoints.logs import LogLine
from .endpoints.monitor import EndpointMonitor
from .errors import NotTracked, ValidationError
from .journal.activity import Scope
from .journal.frames import parts_frame, timeline_frame
from .records import FINISHED, RESUBMITTABLE, ErrorsMode, InvocationRecord, Status, statuses_of
from .results import downloads
from .results import loading as results
from .results import writer as results_writer
from .submission.runner import Submitter
from .tracking.tracker import Tracker

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

    def invocation(self, inference_id: str) -> Invocation:
        """A handle on a tracked invocation.

        Raises:
            NotTracked: the journal has no row for it.
        """
        if not isinstance(inference_id, str) or self.ctx.journal.get(inference_id) is None:
            raise NotTracked(f"Invocation {inference_id!r} is not tracked by this journal ({self.ctx.journal.path}): "
                             "ids are tracked when they are submitted through this client (or another one on the "
                             "same journal), until they are forgotten.", parameter="inference_id")
        return Invocation(self, inference_id)

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
    def done(self) -> bool:
        parts = self.parts()
        return all(r.status in FINISHED for r in parts) and not results.unsent_slots(self.record, parts)

    def refresh(self) -> dict[str, int]:
        ids = [r.inference_id for r in self.parts() if r.status is Status.PENDING]
        if ids:
            self._parts.tracker.refresh(ids)
        return self.status_counts()

    def wait(self, timeout: float | None = None) -> InvocationBatch:
        self._parts.tracker.wait_for(self.inference_ids, timeout)
        return self

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
