"""The submission work: journal the intent, upload the input, invoke, journal the answer.

Idempotency: the inference id is fixed before anything is uploaded and names the input object,
so doing a submission again (a retry, a resubmit, a re-run cell with the same ids) rewrites the
same object and never journals a second invocation for the id.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from boto3.s3.transfer import TransferConfig

from .aws import AwsClients, Problem, explain
from .codecs import EncodedPayload
from .config import SageMakerAsync
from .journal import Journal
from .records import BatchRecord, InvocationRecord, Status, SubmitStep
from .s3uri import S3Uri

SINGLE_PUT_LIMIT = 8 * 1024 * 1024
_TRANSFER = TransferConfig(multipart_threshold=SINGLE_PUT_LIMIT, max_concurrency=4)
RESUMABLE = frozenset({Status.ERROR, Status.SUBMITTING})


@dataclass
class PreparedRequest:
    """A validated, encoded request whose journal row may or may not exist yet."""

    record: InvocationRecord
    api_params: dict[str, Any]                  # botocore kwargs except InputLocation / Body
    payload: EncodedPayload | None = None       # None: reuse the input already in S3
    existing: InvocationRecord | None = None    # the journal row when this is a retry
    done: bool = False                          # already submitted earlier: nothing to do

    @property
    def inference_id(self) -> str:
        return self.record.inference_id


def input_uri(prefix: S3Uri, inference_id: str, suffix: str) -> S3Uri:
    """The input object is named by the inference id: a retry overwrites, never duplicates."""
    return prefix.join(quote(inference_id, safe="-_.~") + suffix)


def owner_alive(pid: int) -> bool:
    """Whether the process that journaled a submission can still finish it. A killed kernel may
    linger as a zombie until its parent reaps it: that counts as dead."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


@dataclass
class _StopSignal:
    """Set by the first request that fails in a way every other request would too."""

    problem: Problem | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trip(self, problem: Problem) -> None:
        with self.lock:
            if self.problem is None:
                self.problem = problem


class Submitter:
    def __init__(self, aws: AwsClients, journal: Journal, settings: SageMakerAsync, pool: Executor):
        self.aws = aws
        self.journal = journal
        self.settings = settings
        self.pool = pool

    # --- public ------------------------------------------------------------------------------

    def run(self, requests: list[PreparedRequest], batch: BatchRecord | None = None) -> list[InvocationRecord]:
        """Journal every request, then send them (concurrently when there are several).
        Returns the final journal rows in request order."""
        self._journal_intent(requests, batch)
        stop = _StopSignal()
        todo = [r for r in requests if not r.done]
        if len(todo) == 1:
            self._send(todo[0], stop)
        elif todo:
            for future in [self.pool.submit(self._send, r, stop) for r in todo]:
                future.result()
        rows = self.journal.get_many([r.inference_id for r in requests])
        return [rows[r.inference_id] for r in requests]

    # --- steps -------------------------------------------------------------------------------

    def _journal_intent(self, requests: list[PreparedRequest], batch: BatchRecord | None) -> None:
        new = [r.record for r in requests if r.existing is None]
        if batch is not None and self.journal.get_batch(batch.batch_id) is not None:
            batch = None
        if new or batch is not None:
            self.journal.add(new, batch)
        for request in requests:
            if request.existing is not None and not request.done:
                changed = self.journal.update(
                    request.inference_id, expect=RESUMABLE, status=Status.SUBMITTING,
                    submit_step=SubmitStep.JOURNALED, error=None, owner_pid=os.getpid(),
                    submitted_at=request.record.submitted_at)
                if not changed:  # another process got there first: leave it to that one
                    request.done = True

    def _send(self, request: PreparedRequest, stop: _StopSignal) -> None:
        record = request.record
        if stop.problem is not None:
            self._fail(record, f"Not submitted: an earlier request failed: {stop.problem.message}")
            return
        uploaded: S3Uri | None = None
        try:
            params = dict(request.api_params)
            if record.inline:
                params["Body"] = request.payload.body
            else:
                location = S3Uri.parse(record.input_location)
                if request.payload is not None:
                    self._upload(request.payload, location)
                    uploaded = location
                params["InputLocation"] = str(location)
            self.journal.update(record.inference_id, expect=Status.SUBMITTING, submit_step=SubmitStep.INVOKING)
            answer = self.aws.runtime.invoke_endpoint_async(**params)
            invoked_at = time.time()
            self.journal.update(
                record.inference_id, expect=Status.SUBMITTING, status=Status.PENDING,
                submit_step=SubmitStep.DONE, output_location=answer.get("OutputLocation"),
                failure_location=answer.get("FailureLocation"), invoked_at=invoked_at,
                deadline=record.replace(invoked_at=invoked_at, deadline=None).service_deadline())
        except Exception as exc:
            bucket = S3Uri.parse(record.input_location).bucket if record.input_location else None
            problem = explain(exc, bucket=bucket, endpoint_name=record.endpoint_name)
            message = problem.message
            if problem.permanent or problem.code == "ConnectionError":
                stop.trip(problem)  # the rest of the batch would fail the same way, slowly
            if problem.permanent:
                if uploaded is not None and self._delete_quietly(uploaded):
                    message += " (the uploaded input was removed)"
                    self.journal.update(record.inference_id, input_location=None)
            self._fail(record, message)
        except BaseException:  # KeyboardInterrupt: never leave a row claiming it is being submitted
            self._fail(record, "Interrupted during submission; call resubmit() to finish it.")
            raise

    def _upload(self, payload: EncodedPayload, location: S3Uri) -> None:
        extra: dict[str, Any] = {"ContentType": payload.content_type}
        if self.settings.kms_key_id:
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.settings.kms_key_id)
        if self.settings.expected_bucket_owner:
            extra["ExpectedBucketOwner"] = self.settings.expected_bucket_owner
        if payload.body is not None and payload.size <= SINGLE_PUT_LIMIT:
            self.aws.s3.put_object(Bucket=location.bucket, Key=location.key, Body=payload.body, **extra)
            return
        with payload.open() as stream:
            self.aws.s3.upload_fileobj(stream, location.bucket, location.key, ExtraArgs=extra, Config=_TRANSFER)

    def _delete_quietly(self, location: S3Uri) -> bool:
        try:
            extra = {}
            if self.settings.expected_bucket_owner:
                extra["ExpectedBucketOwner"] = self.settings.expected_bucket_owner
            self.aws.s3.delete_object(Bucket=location.bucket, Key=location.key, **extra)
            return True
        except Exception:
            return False

    def _fail(self, record: InvocationRecord, message: str) -> None:
        self.journal.update(record.inference_id, expect=Status.SUBMITTING, status=Status.ERROR,
                            submit_step=SubmitStep.DONE, error=message, finished_at=time.time())
