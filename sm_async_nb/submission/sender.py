"""One request's work, on a worker thread: upload the input, invoke, journal the answer.

Idempotency: the inference id is fixed before anything is uploaded and names the input object,
so doing a submission again (a retry, a resubmit, a re-run cell with the same ids) rewrites the
same object and never journals a second invocation for the id. The invoke is sent only after the
row moved to step INVOKING by this process (compare-and-set): a row the runner gave up on (Ctrl-C)
or another process recovered is never invoked.

Payloads of requests that ended ERROR before their input was written (not sent, or failed) are
held in memory (up to ``HELD_LIMIT`` bytes; a file payload costs nothing) so ``resubmit()`` in
the same process can send them; the journal says ``input_location = None`` for them, because
nothing is there.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import threading
from collections.abc import Mapping
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from .. import progress
from ..aws.clients import CONDITION_CODES, Problem, error_code, explain
from ..aws.s3uri import S3Uri
from ..context import Context
from ..contract.routing import ROUTER_MEMBER
from ..errors import JournalError
from ..payloads import EncodedPayload
from .prepare import PreparedRequest

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


class Outcome(str, enum.Enum):
    """How one request of a run ended."""

    SENT = "sent"                  # invoked: PENDING
    FAILED = "failed"              # ERROR: AWS refused, or an earlier request stopped the run
    INTERRUPTED = "interrupted"    # ERROR: Ctrl-C came before it started
    SKIPPED = "skipped"            # submitted by an earlier run (or another thread): nothing to do
    QUEUED = "queued"              # its input in place, held QUEUED by flow control: invoked later


class StopSignal:
    """One per run, shared by its requests: once set, requests that have not started are not sent.

    Set by Ctrl-C, by the first request that fails in a way every other request would too (expired
    credentials, a missing bucket, a lost connection), or by a request that crashed. ``paused`` (a
    job's pause): requests whose input is in place are held QUEUED instead of invoked."""

    def __init__(self, paused: threading.Event | None = None) -> None:
        self._lock = threading.Lock()
        self._paused = paused
        self.interrupted = False
        self.problem: Problem | None = None
        self.crash: BaseException | None = None

    def interrupt(self) -> None:
        self.interrupted = True

    def trip(self, problem: Problem) -> None:
        with self._lock:
            if self.problem is None:
                self.problem = problem
        if self._paused is not None:
            # A job's run: what would fail every other request (a lost connection, expired credentials)
            # pauses the job, so its QUEUED rows wait for resume() instead of all ending ERROR.
            self._paused.set()

    def crashed(self, exc: BaseException) -> None:
        with self._lock:
            if self.crash is None:
                self.crash = exc

    @property
    def held(self) -> bool:
        """A job's pause: requests are kept QUEUED, not invoked."""
        return self._paused is not None and self._paused.is_set()

    @property
    def stopped(self) -> bool:
        return self.interrupted or self.problem is not None or self.crash is not None

    def why_not_sent(self, input_in_place: bool = False) -> tuple[Outcome, str] | None:
        """What a request starting now is journaled with instead of being sent (None: send it, or hold it
        QUEUED when the job is paused and its input is in place)."""
        if self.interrupted:
            return Outcome.INTERRUPTED, NOT_SENT_INTERRUPTED
        if self.crash is not None:
            return Outcome.FAILED, (f"Not sent: the submission stopped ({type(self.crash).__name__} in another "
                                    "request); resubmit() sends it.")
        if self.problem is not None and not (self.held and input_in_place):
            return Outcome.FAILED, f"Not submitted: an earlier request failed: {self.problem.message}"
        return None


class Sender:
    """Sends one prepared request (from a worker thread) and keeps the payloads that never reached S3."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._held: dict[str, EncodedPayload] = {}
        self._held_lock = threading.Lock()

    def send(self, request: PreparedRequest, stop: StopSignal, hold: bool = False) -> Outcome:
        """Upload, invoke, journal. Every AWS failure is journaled ERROR (the first that would fail every
        other request trips ``stop``); anything else escaping (a BaseException, a journal that cannot be
        written) journals the row ERROR if it can, trips ``stop``, and is re-raised.

        With ``hold`` (a job's requests) or once ``stop`` is held (a paused job), the request stops after
        its input is in place: journaled QUEUED, invoked later by the job thread."""
        record = request.record
        why = stop.why_not_sent(input_in_place=request.payload is None and not record.inline)
        if why is not None:
            self.not_sent(request, why[1])
            return why[0]
        uploaded: S3Uri | None = None
        invoking = False
        input_written = request.payload is None  # the input is already in S3 (the user's, or reused)
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
            if hold or stop.held:
                if journal.mark_queued(record.inference_id):
                    return Outcome.QUEUED
                log.info("not queueing %s: its row is no longer this run's", record.inference_id)
                return Outcome.FAILED
            if not journal.mark_invoking(record.inference_id):
                log.info("not invoking %s: its row is no longer this run's to send", record.inference_id)
                return Outcome.INTERRUPTED if stop.interrupted else Outcome.FAILED
            invoking = True
            answer = self._invoke(params)
            invoked_at = self.ctx.clock()
            journal.mark_pending(record.inference_id, output_location=answer.get("OutputLocation"),
                                 failure_location=answer.get("FailureLocation"), invoked_at=invoked_at,
                                 deadline=record.replace(invoked_at=invoked_at, deadline=None).service_deadline(),
                                 clock_offset=self.ctx.aws.s3_clock.offset())
            return Outcome.SENT
        except InputKeyTaken as exc:  # someone else's object: left alone, and this request not sent
            log.info("submission of %s refused: %s", record.inference_id, exc)
            self.not_sent(request, str(exc))
            return Outcome.FAILED
        except JournalError as exc:  # not an AWS failure: the run cannot go on (e.g. the disk is full)
            stop.crashed(exc)
            raise
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
            self.not_sent(request, message, input_written=input_written)
            return Outcome.FAILED
        except BaseException as exc:  # never leave the row SUBMITTING for the life of this process
            stop.crashed(exc)
            message = (f"The invoke's answer was lost ({type(exc).__name__}); SageMaker may have accepted it. "
                       "resubmit() sends it again with the same inference id and input." if invoking else
                       f"Not sent: {type(exc).__name__} stopped the submission; resubmit() sends it.")
            try:
                self.not_sent(request, message, input_written=input_written)
            except Exception:
                log.exception("could not journal %s as not sent", record.inference_id)
            raise

    def _invoke(self, params: dict[str, Any]) -> Any:
        """InvokeEndpointAsync, or InvokeInferenceRouterAsync for a routing target (the arguments name which)."""
        if ROUTER_MEMBER in params:
            return self.ctx.aws.router_runtime.invoke_inference_router_async(**params)
        return self.ctx.aws.runtime.invoke_endpoint_async(**params)

    def not_sent(self, request: PreparedRequest, message: str, *, input_written: bool = False) -> bool:
        """ERROR, with the journal saying where the input really is (nowhere, unless written); the payload
        is held for resubmit() when it never reached S3. Whether the row changed (it was this run's)."""
        if not input_written:
            self._hold(request.inference_id, request.payload)
        return self.ctx.journal.mark_not_sent(request.inference_id, message, input_written=input_written)

    @property
    def held(self) -> Mapping[str, EncodedPayload]:
        """Payloads that never reached S3, by inference id (what resubmit() can still send)."""
        with self._held_lock:
            return dict(self._held)

    def release(self, inference_ids: list[str]) -> None:
        """Stop holding these payloads (they were sent again)."""
        with self._held_lock:
            for inference_id in inference_ids:
                self._held.pop(inference_id, None)

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
                if error_code(exc) not in CONDITION_CODES:
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
