"""The submission work: journal the intent, upload the input, invoke, journal the answer.

Idempotency: the inference id is fixed before anything is uploaded and names the input object,
so doing a submission again (a retry, a resubmit, a re-run cell with the same ids) rewrites the
same object and never journals a second invocation for the id.

Threads and interrupts: every request, a single one too, is sent from the client's worker pool;
the calling thread only waits. Ctrl-C (KeyboardInterrupt in the calling thread) therefore never
cuts a request in half: requests not yet started are cancelled and journaled ERROR ("not sent"),
requests in flight finish and are journaled, and :class:`SubmissionInterrupted` says what
happened. A second Ctrl-C stops the waiting; in-flight requests still journal themselves.

Payloads of requests that ended ERROR before their input was written (not sent, or failed) are
held in memory (up to ``HELD_LIMIT`` bytes; a file payload costs nothing) so ``resubmit()`` in
the same process can send them; the journal says ``input_location = None`` for them, because
nothing is there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from .. import progress
from ..aws.clients import Problem, error_code, explain
from ..aws.s3uri import S3Uri
from ..context import Context
from ..errors import SubmissionInterrupted, ValidationError
from ..payloads import EncodedPayload
from ..records import RESUBMITTABLE, BatchRecord, InvocationRecord, Status, SubmitStep
from .prepare import PreparedRequest, Preparer, continues

log = logging.getLogger(__name__)

SINGLE_PUT_LIMIT = 8 * 1024 * 1024
# Large files go up in 8 MB parts, 4 at a time: about 32 MB in flight, whatever the file's size.
_TRANSFER = TransferConfig(multipart_threshold=SINGLE_PUT_LIMIT, multipart_chunksize=SINGLE_PUT_LIMIT,
                           max_concurrency=4)
SHA256_METADATA = "sm-async-nb-sha256"  # x-amz-meta-*: which input an object holds, to recognise our own
NOT_SENT_INTERRUPTED = "Not sent: interrupted (Ctrl-C); resubmit() sends it."
HELD_LIMIT = 256 * 1024 * 1024


class InputKeyTaken(Exception):
    """The input's key already holds an object that is not this input (it is never overwritten)."""


@dataclass
class _StopSignal:
    """Set by Ctrl-C, or by the first request that fails in a way every other request would too."""

    problem: Problem | None = None
    interrupted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trip(self, problem: Problem) -> None:
        with self.lock:
            if self.problem is None:
                self.problem = problem


class Submitter:
    """Sends prepared requests and resubmits finished-but-unsuccessful ones."""

    def __init__(self, ctx: Context, preparer: Preparer, on_submitted: Callable[[], None] = lambda: None):
        self.ctx = ctx
        self.preparer = preparer
        self.on_submitted = on_submitted
        self._held: dict[str, EncodedPayload] = {}
        self._held_lock = threading.Lock()

    # --- public ------------------------------------------------------------------------------

    def run(self, requests: list[PreparedRequest], batch: BatchRecord | None = None) -> list[InvocationRecord]:
        """Journal every request, then send them from the pool. Returns the final journal rows in
        request order; raises SubmissionInterrupted on Ctrl-C (after journaling what happened)."""
        self._journal_intent(requests, batch)
        todo = [r for r in requests if not r.done]
        stop = _StopSignal()
        futures = [self.ctx.pool.submit(self._send, r, stop) for r in todo]
        try:
            wait(futures)
        except KeyboardInterrupt:
            self._interrupt(todo, futures, stop, batch)
        finally:
            self.on_submitted()
        # _send journals every AWS failure itself; anything else escaping it is a bug: say so, loudly.
        crashed = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
        if crashed:
            raise crashed[0]  # type: ignore[misc]
        rows = self.ctx.journal.get_many([r.inference_id for r in requests])
        return [rows[r.inference_id] for r in requests]

    def resubmit(self, inference_ids: Iterable[str], *, skip_impossible: bool | None = None) -> list[str]:
        """Send ERROR, FAILED or EXPIRED invocations again; returns the ids now carrying them.

        Args:
            inference_ids: the invocations to send again (a resubmitted one: its latest attempt).
            skip_impossible: leave those that cannot be resubmitted (their payload never reached S3 and
                is not held any more) ERROR with the reason, and send the others. Default: skip when
                several ids are given, raise for one.

        Raises:
            ValidationError: an unknown id; one that cannot be resubmitted (unless skipped)."""
        ids = list(dict.fromkeys(inference_ids))
        records = self.ctx.journal.get_many(ids)
        unknown = [i for i in ids if i not in records]
        if unknown:
            raise ValidationError(f"No tracked invocation {unknown[0]!r}" + (
                f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "") + ".")
        requests: list[PreparedRequest] = []
        skipped: dict[str, str] = {}
        carried: dict[str, str] = {}  # id asked for -> the id carrying it now
        for inference_id in ids:
            try:
                latest = self._latest(records[inference_id])
                if latest.origin != self.ctx.origin:
                    raise ValidationError(f"Invocation {inference_id} belongs to another AWS target: switch back to "
                                          "it (its region or local stack) to resubmit it.")
                if latest.inference_id != inference_id and latest.status not in RESUBMITTABLE:
                    carried[inference_id] = latest.inference_id  # resubmitted already: idempotent
                    continue
                request = self.preparer.resubmission(latest, self._held.get(latest.inference_id))
                if request.existing is None and not self.ctx.journal.claim_resubmission(
                        latest.inference_id, request.inference_id):
                    carried[inference_id] = self._latest(latest).inference_id  # another caller won the race
                    continue
                requests.append(request)
                carried[inference_id] = request.inference_id
            except ValidationError as exc:
                if not (len(ids) > 1 if skip_impossible is None else skip_impossible):
                    raise
                skipped[inference_id] = str(exc)
        if skipped:
            log.warning("%d invocation(s) could not be resubmitted, e.g. %s", len(skipped),
                        next(iter(skipped.values())))
            self.ctx.journal.update_many([(i, Status.ERROR, {"error": f"Not resubmitted: {why}"})
                                          for i, why in skipped.items()])
        self.run(requests)
        with self._held_lock:
            for request in requests:
                self._held.pop(request.inference_id, None)
        return list(dict.fromkeys(carried[i] for i in ids if i in carried))

    def _latest(self, record: InvocationRecord) -> InvocationRecord:
        """Follow ``resubmitted_as`` to the attempt that carries the request now. A pointer to a row that
        is gone (forgotten, or a crash before it was journaled) is cleared."""
        seen = {record.inference_id}
        while record.resubmitted_as is not None:
            nxt = self.ctx.journal.get(record.resubmitted_as)
            if nxt is None or nxt.inference_id in seen:
                self.ctx.journal.claim_resubmission(record.inference_id, None, expect_current=record.resubmitted_as)
                return record.replace(resubmitted_as=None)
            seen.add(nxt.inference_id)
            record = nxt
        return record

    def _hold(self, inference_id: str, payload: EncodedPayload | None) -> None:
        """Keep a payload that never reached S3 so resubmit() can send it (bounded)."""
        if payload is None:
            return
        with self._held_lock:
            in_memory = sum(p.size for p in self._held.values() if p.body is not None)
            if payload.body is None or in_memory + payload.size <= HELD_LIMIT:
                self._held[inference_id] = payload
            else:
                log.info("not holding %s (%d bytes) for resubmission: over %d bytes held", inference_id,
                         payload.size, HELD_LIMIT)

    # --- interruption ------------------------------------------------------------------------

    def _interrupt(self, todo: Sequence[PreparedRequest], futures: Sequence[Future[None]], stop: _StopSignal,
                   batch: BatchRecord | None) -> None:
        stop.interrupted = True  # requests that start from now on journal themselves as not sent
        cancelled = 0
        for request, future in zip(todo, futures, strict=True):
            if future.cancel():
                self._not_sent(request, NOT_SENT_INTERRUPTED)
                cancelled += 1
        in_flight = [f for f in futures if not f.cancelled()]
        try:
            wait(in_flight)  # in-flight requests finish and are journaled
        except KeyboardInterrupt:
            log.warning("stopped waiting for %d in-flight request(s); they journal themselves when done",
                        sum(1 for f in in_flight if not f.done()))
        rows = self.ctx.journal.get_many([r.inference_id for r in todo]).values()
        sent = sum(1 for r in rows if r.status not in (Status.ERROR, Status.SUBMITTING))
        not_sent = sum(1 for r in rows if r.status is Status.ERROR and r.error == NOT_SENT_INTERRUPTED)
        log.info("submission interrupted: %d sent, %d not sent (%d cancelled before starting)",
                 sent, not_sent, cancelled)
        raise SubmissionInterrupted(sent=sent, not_sent=not_sent, total=len(todo),
                                    batch_id=batch.batch_id if batch else None,
                                    inference_id=todo[0].inference_id if len(todo) == 1 else None) from None

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
                journal.delete(inserted)  # ours, not sent yet: leave no orphan rows
                raise
        for request in requests:
            if request.existing is not None and not request.done:
                changed = journal.update(
                    request.inference_id, expect=request.existing.status, status=Status.SUBMITTING,
                    submit_step=SubmitStep.JOURNALED, error=None, owner_pid=os.getpid(),
                    submitted_at=request.record.submitted_at, input_location=request.record.input_location,
                    finished_at=None)
                if not changed:  # another thread or process got there first: leave it to that one
                    request.done = True

    def _send(self, request: PreparedRequest, stop: _StopSignal) -> None:
        record = request.record
        if stop.interrupted:
            self._not_sent(request, NOT_SENT_INTERRUPTED)
            return
        if stop.problem is not None:
            self._not_sent(request, f"Not submitted: an earlier request failed: {stop.problem.message}")
            return
        uploaded: S3Uri | None = None
        invoking = False
        input_written = request.payload is None  # a resubmission reusing the input in S3
        journal = self.ctx.journal
        try:
            params = dict(request.api_params)
            if record.inline:
                assert request.payload is not None and request.payload.body is not None
                params["Body"] = request.payload.body
            else:
                assert record.input_location is not None
                location = S3Uri.parse(record.input_location)
                if request.payload is not None:
                    ours = self._upload(request.payload, location)
                    uploaded, input_written = (location if ours else None), True
                params["InputLocation"] = str(location)
            journal.update(record.inference_id, expect=Status.SUBMITTING, submit_step=SubmitStep.INVOKING)
            invoking = True
            answer = self.ctx.aws.runtime.invoke_endpoint_async(**params)
            invoked_at = time.time()
            journal.update(
                record.inference_id, expect=Status.SUBMITTING, status=Status.PENDING,
                submit_step=SubmitStep.DONE, output_location=answer.get("OutputLocation"),
                failure_location=answer.get("FailureLocation"), invoked_at=invoked_at,
                deadline=record.replace(invoked_at=invoked_at, deadline=None).service_deadline())
        except InputKeyTaken as exc:  # someone else's object: left alone, and this request not sent
            log.info("submission of %s refused: %s", record.inference_id, exc)
            self._not_sent(request, str(exc))
        except Exception as exc:
            bucket = S3Uri.parse(record.input_location).bucket if record.input_location else None
            problem = explain(exc, bucket=bucket, endpoint_name=record.endpoint_name)
            message = problem.message
            if invoking and problem.kind in ("connection", "transient"):
                # The request may have reached SageMaker before its answer was lost.
                message = (f"The invoke's answer was lost ({problem.message}); SageMaker may have accepted it. "
                           "resubmit() sends it again with the same inference id and input.")
            if problem.stops_batch:
                stop.trip(problem)  # the rest of the batch would fail the same way, slowly
            if problem.permanent and uploaded is not None and not record.user_input \
                    and self._delete_quietly(uploaded):  # ours only: a user's object is never deleted
                message += " (the uploaded input was removed)"
                input_written = False
            log.info("submission of %s failed: %s", record.inference_id, message)
            self._not_sent(request, message, input_written=input_written)

    def _upload(self, payload: EncodedPayload, location: S3Uri) -> bool:
        """Write the input, never over an object that is already there; True when this client wrote it.

        Raises:
            InputKeyTaken: the key holds something else (a user's object under s3_input_path).
        """
        settings = self.ctx.settings
        extra: dict[str, Any] = {"ContentType": payload.content_type, "Metadata": {SHA256_METADATA: payload.sha256}}
        if settings.kms_key_id:
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=settings.kms_key_id)
        if settings.expected_bucket_owner:
            extra["ExpectedBucketOwner"] = settings.expected_bucket_owner
        s3 = self.ctx.aws.s3
        if payload.body is not None and payload.size <= SINGLE_PUT_LIMIT:
            try:  # conditional: an existing key is never overwritten, without a race
                s3.put_object(Bucket=location.bucket, Key=location.key, Body=payload.body, IfNoneMatch="*", **extra)
                return True
            except ClientError as exc:
                if error_code(exc) != "PreconditionFailed":
                    raise
            found = self._existing(location, payload)
            if found == "stale":  # an earlier input of ours under a reused (forgotten) id
                s3.put_object(Bucket=location.bucket, Key=location.key, Body=payload.body, **extra)
            return found != "same-bytes"
        # s3transfer cannot make a multipart upload conditional: look first (a narrow race remains).
        if self._exists(location):
            found = self._existing(location, payload)
            if found != "stale":
                return found == "this"
        shown = progress.make(f"uploading {payload.path.name if payload.path else location.key}", payload.size)
        try:
            if payload.path is not None:  # streamed from disk part by part: memory stays ~chunk x concurrency
                s3.upload_file(str(payload.path), location.bucket, location.key, ExtraArgs=extra,
                               Callback=shown, Config=_TRANSFER)
            else:
                with payload.open() as stream:
                    s3.upload_fileobj(stream, location.bucket, location.key, ExtraArgs=extra, Callback=shown,
                                      Config=_TRANSFER)
        except BaseException:
            if shown is not None:
                shown.close(ok=False)
            raise
        if shown is not None:
            shown.close(ok=True)
        return True

    def _owner_args(self) -> dict[str, Any]:
        owner = self.ctx.settings.expected_bucket_owner
        return {"ExpectedBucketOwner": owner} if owner else {}

    def _exists(self, location: S3Uri) -> bool:
        try:
            self.ctx.aws.s3.head_object(Bucket=location.bucket, Key=location.key, **self._owner_args())
            return True
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def _existing(self, location: S3Uri, payload: EncodedPayload) -> str:
        """What holds the input's key: ``"this"`` (this very input, uploaded by a client of ours: a
        retried or continued submission), ``"stale"`` (another input of ours, under an id reused
        after forget: ours to replace), ``"same-bytes"`` (someone else's identical object: used, and
        never deleted).

        Raises:
            InputKeyTaken: anything else (a user's object is never overwritten).
        """
        head = self.ctx.aws.s3.head_object(Bucket=location.bucket, Key=location.key, **self._owner_args())
        tag = (head.get("Metadata") or {}).get(SHA256_METADATA)
        if tag is not None:
            return "this" if tag == payload.sha256 else "stale"
        etag = str(head.get("ETag", "")).strip('"')
        if payload.body is not None and etag == hashlib.md5(payload.body, usedforsecurity=False).hexdigest():
            return "same-bytes"
        raise InputKeyTaken(f"{location} already holds an object that is not this input; it was left untouched and "
                            "nothing was sent. Use another s3_input_path or inference_id.")

    def _delete_quietly(self, location: S3Uri) -> bool:
        try:
            self.ctx.aws.s3.delete_object(Bucket=location.bucket, Key=location.key, **self._owner_args())
            return True
        except Exception:
            log.warning("could not remove the uploaded input %s", location, exc_info=True)
            return False

    def _not_sent(self, request: PreparedRequest, message: str, *, input_written: bool = False) -> None:
        """ERROR, with the journal saying where the input really is (nowhere, unless written)."""
        if not input_written:
            self._hold(request.inference_id, request.payload)
        self._fail(request.record, message, **({} if input_written else {"input_location": None}))

    def _fail(self, record: InvocationRecord, message: str, **changes: Any) -> None:
        self.ctx.journal.update(record.inference_id, expect=Status.SUBMITTING, status=Status.ERROR,
                                submit_step=SubmitStep.DONE, error=message, finished_at=time.time(), **changes)
