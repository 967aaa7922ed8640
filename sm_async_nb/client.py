"""AsyncInferenceClient: validate → encode → journal → upload → invoke, and handles to follow up.

Every check that can fail is done for all requests before the first byte is uploaded, so a bad
request (or one bad payload in a batch) leaves nothing in S3 and nothing in the journal.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from . import codecs, validation
from .aws import AwsClients, explain
from .config import SageMakerAsync
from .errors import ConfigurationError, SubmissionError, ValidationError
from .journal import Journal
from .records import (REQUEST_FIELDS, BatchRecord, InvocationRecord, Status, SubmitStep,
                      new_inference_id)
from .s3uri import S3Uri
from .submission import RESUMABLE, PreparedRequest, Submitter, input_uri, owner_alive

if TYPE_CHECKING:
    import pandas as pd

    from .invocation import Invocation, InvocationBatch
    from .tracker import Tracker

DEFAULT_PREFIX = "sm-async-nb/inputs/"


@dataclass(frozen=True)
class RequestOptions:
    """The InvokeEndpointAsync options shared by submit, submit_many and submit_dataframe."""

    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    s3_output_path_extension: str | None = None
    label: str | None = None
    inline: bool = False


def _per_item(name: str, value: Any, count: int) -> list[Any]:
    """A batch option that must differ per request (ids, file names): a sequence, or None."""
    if value is None:
        return [None] * count
    if isinstance(value, str):
        raise ValidationError(f"{name} {value!r} names one request but this batch has {count}: "
                              f"pass a list with one {name} per payload.", parameter=name)
    values = list(value)
    if len(values) != count:
        raise ValidationError(f"{name} has {len(values)} entries for {count} payloads; give one per payload.",
                              parameter=name)
    return values


class AsyncInferenceClient:
    """Submit payloads to SageMaker async endpoints and follow them up from a notebook."""

    def __init__(self, s3_input_path: str | None = None, session: boto3.Session | None = None,
                 journal_path: str | os.PathLike | None = None, max_workers: int | None = None, *,
                 settings: SageMakerAsync | None = None, endpoint_urls: dict[str, str] | None = None):
        self.settings = settings if settings is not None else SageMakerAsync()
        path = s3_input_path if s3_input_path is not None else self.settings.s3_input_path
        try:
            self._input_prefix = S3Uri.parse(S3Uri.parse(path).as_prefix()) if path else None
        except ValueError as exc:
            raise ConfigurationError(f"s3_input_path: {exc}") from None
        if session is None:
            session = boto3.Session(profile_name=self.settings.profile or None,
                                    region_name=self.settings.region or None)
        if session.region_name is None:
            raise ConfigurationError("No AWS region configured: set AWS_DEFAULT_REGION, a region in your "
                                     "profile, or %config SageMakerAsync.region = 'us-east-1'.")
        self.max_workers = max_workers or self.settings.max_workers
        self.aws = AwsClients(session, endpoint_urls, self.max_workers)
        self.journal = Journal(journal_path or self.settings.resolved_journal_path())
        self.origin = self.aws.origin()
        self.pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="sm-async-nb")
        self._submitter = Submitter(self.aws, self.journal, self.settings, self.pool)
        self._tracker: Tracker | None = None
        self._prefix_lock = threading.Lock()
        self.recovered = self._recover_interrupted()

    # --- submitting --------------------------------------------------------------------------

    def submit(self, endpoint_name: str, payload: Any, content_type: str | None = None,
               accept: str | None = None, custom_attributes: str | None = None,
               inference_id: str | None = None, request_ttl_seconds: int | None = None,
               invocation_timeout_seconds: int | None = None, s3_output_path_extension: str | None = None,
               filename: str | None = None, label: str | None = None, inline: bool = False) -> "Invocation":
        """Send one payload. Raises ValidationError (nothing sent) or SubmissionError (journaled as
        ERROR; the exception carries the inference id)."""
        options = RequestOptions(content_type, accept, custom_attributes, request_ttl_seconds,
                                 invocation_timeout_seconds, s3_output_path_extension, label, inline)
        request = self._prepare(endpoint_name, payload, options, inference_id=inference_id, filename=filename)
        [record] = self._submitter.run([request])
        self._after_submit()
        if record.status is Status.ERROR:
            raise SubmissionError(record.error or "submission failed", inference_id=record.inference_id)
        return self.invocation(record.inference_id)

    def submit_many(self, endpoint_name: str, payloads: Iterable[Any], *,
                    inference_id: str | Sequence[str] | None = None,
                    filename: Sequence[str] | None = None, **options: Any) -> "InvocationBatch":
        """Send many payloads concurrently as one batch (same options as :meth:`submit`).
        ``inference_id`` may be one id per payload, or one str used as the batch's id prefix: re-running
        with the same id continues an interrupted batch instead of starting another."""
        items = list(payloads)
        return self._submit_batch(endpoint_name, [(p, None) for p in items], RequestOptions(**options),
                                  inference_id, filename, kind="payloads", index=None)

    def submit_dataframe(self, endpoint_name: str, df: "pd.DataFrame", rows_per_request: int = 100,
                         content_type: str | None = "text/csv", *,
                         inference_id: str | Sequence[str] | None = None,
                         filename: Sequence[str] | None = None, **options: Any) -> "InvocationBatch":
        """Split ``df`` into requests of ``rows_per_request`` rows; results come back in input order,
        aligned to ``df.index`` when each request returns one row per input row."""
        import pandas as pd

        if isinstance(df, pd.Series):
            df = df.to_frame()
        if not isinstance(df, pd.DataFrame):
            raise ValidationError(f"submit_dataframe needs a pandas DataFrame, not {type(df).__name__}.")
        if isinstance(rows_per_request, bool) or not isinstance(rows_per_request, int) or rows_per_request < 1:
            raise ValidationError(f"rows_per_request must be a positive integer, not {rows_per_request!r}.",
                                  parameter="rows_per_request")
        if df.empty:
            raise ValidationError("The DataFrame is empty: there is nothing to send.")
        parts = [(df.iloc[start:start + rows_per_request], (start, min(rows_per_request, len(df) - start)))
                 for start in range(0, len(df), rows_per_request)]
        return self._submit_batch(endpoint_name, parts, RequestOptions(content_type=content_type, **options),
                                  inference_id, filename, kind="dataframe", index=df.index)

    def _submit_batch(self, endpoint_name, parts, options: RequestOptions, inference_id, filename, *,
                      kind: str, index) -> "InvocationBatch":
        from .results import batch_index_json

        if not parts:
            raise ValidationError("No payloads given: there is nothing to send.")
        count = len(parts)
        if isinstance(inference_id, str):
            validation.check_member("InferenceId", inference_id)
            width = max(4, len(str(count - 1)))
            ids = [f"{inference_id}-{i:0{width}d}" for i in range(count)]
            batch_id = f"batch-{inference_id}"
        else:
            ids = _per_item("inference_id", inference_id, count)
            batch_id = f"batch-{uuid.uuid4().hex[:12]}"
        names = _per_item("filename", filename, count)
        now = time.time()
        requests = []
        for i, ((payload, rows), iid, name) in enumerate(zip(parts, ids, names)):
            try:
                requests.append(self._prepare(
                    endpoint_name, payload, options, inference_id=iid, filename=name, now=now,
                    batch_id=batch_id, batch_index=i, rows=rows))
            except ValidationError as exc:
                raise ValidationError(f"payload {i}: {exc}", parameter=exc.parameter) from None
        batch = BatchRecord(batch_id=batch_id, endpoint_name=endpoint_name, size=count, label=options.label,
                            created_at=now, kind=kind,
                            index_json=batch_index_json(index) if index is not None else None)
        self._submitter.run(requests, batch)
        self._after_submit()
        return self.batch(batch_id)

    def _prepare(self, endpoint_name: str, payload: Any, options: RequestOptions, *,
                 inference_id: str | None, filename: str | None, now: float | None = None,
                 batch_id: str | None = None, batch_index: int | None = None,
                 rows: tuple[int, int] | None = None) -> PreparedRequest:
        params = {
            "endpoint_name": endpoint_name, "content_type": options.content_type, "accept": options.accept,
            "custom_attributes": options.custom_attributes, "inference_id": inference_id,
            "request_ttl_seconds": options.request_ttl_seconds,
            "invocation_timeout_seconds": options.invocation_timeout_seconds,
            "s3_output_path_extension": options.s3_output_path_extension, "filename": filename,
        }
        api = validation.validate_request(params)
        if options.label is not None and not isinstance(options.label, str):
            raise ValidationError(f"label must be a string, not {type(options.label).__name__}.", parameter="label")
        encoded = codecs.encode(payload, options.content_type,
                                default_content_type=self.settings.default_content_type,
                                csv_header=self.settings.csv_header)
        validation.check_member("ContentType", encoded.content_type)
        if options.inline:
            validation.check_inline_body(encoded.size)
        inference_id = inference_id or new_inference_id(now)  # a generated UUIDv7 is always valid
        params.update(content_type=encoded.content_type, inference_id=inference_id)
        api.update(ContentType=encoded.content_type, InferenceId=inference_id)
        request = {k: params[k] for k in REQUEST_FIELDS if params.get(k) is not None}
        # Only now, with the request known to be valid, may the network be touched.
        location = None if options.inline else str(input_uri(self.input_prefix(), inference_id, encoded.suffix))
        record = InvocationRecord(
            inference_id=inference_id, endpoint_name=endpoint_name, origin=self.origin, label=options.label,
            batch_id=batch_id, batch_index=batch_index, row_start=rows[0] if rows else None,
            row_count=rows[1] if rows else None, request=request, inline=options.inline,
            input_location=location, input_size=encoded.size, input_sha256=encoded.sha256,
            submitted_at=now or time.time())
        existing = self.journal.get(inference_id)
        if existing is None:
            return PreparedRequest(record, api, encoded)
        if existing.endpoint_name != endpoint_name or existing.input_sha256 != encoded.sha256:
            raise ValidationError(
                f"InferenceId {inference_id!r} was already used for a different request (another endpoint "
                "or payload): choose a new id, or leave it out to get a fresh one.", parameter="InferenceId")
        if existing.status not in RESUMABLE:
            return PreparedRequest(existing, api, encoded, existing=existing, done=True)
        if existing.status is Status.SUBMITTING and existing.owner_pid != os.getpid() \
                and owner_alive(existing.owner_pid):
            raise ValidationError(f"InferenceId {inference_id!r} is being submitted by process "
                                  f"{existing.owner_pid} right now.", parameter="InferenceId")
        return PreparedRequest(existing.replace(submitted_at=record.submitted_at, input_location=location),
                               api, encoded, existing=existing)

    def resubmit(self, inference_ids: Iterable[str]) -> list["Invocation"]:
        """Send finished-but-unsuccessful invocations again, reusing their input object.

        ERROR rows (never reached SageMaker) keep their inference id; FAILED/EXPIRED rows get a new
        id (the old one already has a failure object) in the same batch slot."""
        requests = []
        for inference_id in inference_ids:
            record = self.journal.get(inference_id)
            if record is None:
                raise ValidationError(f"No tracked invocation {inference_id!r}.")
            requests.append(self._prepare_resubmission(record))
        self._submitter.run(requests)
        self._after_submit()
        return [self.invocation(r.inference_id) for r in requests]

    def _prepare_resubmission(self, record: InvocationRecord) -> PreparedRequest:
        if record.status in (Status.PENDING, Status.SUBMITTING, Status.COMPLETED):
            raise ValidationError(f"Invocation {record.inference_id} is {record.status.value}: "
                                  "only ERROR, FAILED or EXPIRED invocations can be resubmitted.")
        if record.inline or not record.input_location:
            raise ValidationError(f"Invocation {record.inference_id} has no input in S3 to reuse "
                                  "(inline, or removed): submit the payload again.")
        self._check_input_exists(record)
        params = {"endpoint_name": record.endpoint_name, **record.request}
        if record.status is Status.ERROR:
            params["inference_id"] = record.inference_id
            api = validation.validate_request(params)
            return PreparedRequest(record.replace(submitted_at=time.time()), api, None, existing=record)
        fresh = record.replace(
            inference_id=new_inference_id(), status=Status.SUBMITTING, submit_step=SubmitStep.JOURNALED,
            origin=self.origin, output_location=None, failure_location=None, submitted_at=time.time(),
            invoked_at=None, finished_at=None, output_size=None, failure_reason=None, error=None,
            owner_pid=os.getpid())
        params["inference_id"] = fresh.inference_id
        return PreparedRequest(fresh, validation.validate_request(params), None)

    def _check_input_exists(self, record: InvocationRecord) -> None:
        location = S3Uri.parse(record.input_location)
        try:
            self.aws.s3.head_object(Bucket=location.bucket, Key=location.key)
        except Exception as exc:
            problem = explain(exc, bucket=location.bucket)
            if problem.code in ("404", "NoSuchKey", "NotFound"):
                raise ValidationError(f"The input of {record.inference_id} is no longer at {location}: "
                                      "submit the payload again.") from None
            raise SubmissionError(problem.message, inference_id=record.inference_id, code=problem.code) from None

    # --- where inputs go ---------------------------------------------------------------------

    def input_prefix(self) -> S3Uri:
        """The configured s3_input_path, else SageMaker's default bucket (created if missing)."""
        with self._prefix_lock:
            if self._input_prefix is None:
                self._input_prefix = self._default_prefix()
            return self._input_prefix

    def _default_prefix(self) -> S3Uri:
        region = self.aws.region
        try:
            account = self.aws.get("sts").get_caller_identity()["Account"]
            bucket = f"sagemaker-{region}-{account}"
            s3 = self.aws.s3
            try:
                s3.head_bucket(Bucket=bucket)
            except Exception as exc:
                if explain(exc).code not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                create = {} if region == "us-east-1" else {
                    "CreateBucketConfiguration": {"LocationConstraint": region}}
                s3.create_bucket(Bucket=bucket, **create)
        except ConfigurationError:
            raise
        except Exception as exc:
            raise SubmissionError(f"Could not prepare the default input bucket: {explain(exc).message} "
                                  "Or set %config SageMakerAsync.s3_input_path.") from None
        return S3Uri(bucket, DEFAULT_PREFIX)

    # --- following up ------------------------------------------------------------------------

    def invocation(self, inference_id: str) -> "Invocation":
        from .invocation import Invocation

        return Invocation(self, inference_id)

    def batch(self, batch_id: str) -> "InvocationBatch":
        from .invocation import InvocationBatch

        return InvocationBatch(self, batch_id)

    @property
    def tracker(self) -> "Tracker":
        if self._tracker is None:
            from .tracker import Tracker

            self._tracker = Tracker(self)
        return self._tracker

    def panel(self):
        """The live ipywidgets panel of tracked invocations (starts background polling)."""
        from .panel import Panel

        return Panel(self)

    def forget(self, inference_ids: Iterable[str]) -> int:
        """Drop rows from the journal (their S3 objects stay)."""
        return self.journal.delete(inference_ids)

    def prune(self, older_than_days: float = 30.0) -> int:
        """Forget finished invocations whose result was seen more than ``older_than_days`` ago."""
        if older_than_days < 0:
            raise ValidationError(f"older_than_days must be >= 0, not {older_than_days}.")
        return self.journal.prune(finished_before=time.time() - older_than_days * 86400)

    def _after_submit(self) -> None:
        if self._tracker is not None:
            self._tracker.poke()

    def _recover_interrupted(self) -> list[str]:
        """SUBMITTING rows whose process died become ERROR with what resubmit() can do for them."""
        updates = []
        for record in self.journal.query(statuses=[Status.SUBMITTING], origin=self.origin):
            if owner_alive(record.owner_pid):
                continue
            if record.submit_step is SubmitStep.INVOKING and not record.inline:
                why = ("Interrupted during submission (input uploaded, invoke answer lost): resubmit() "
                       "finishes it with the same inference id and input.")
            elif record.inline:
                why = ("Interrupted during an inline submission (the payload was only in memory): submit it "
                       "again (re-running the cell with the same inference_id continues a batch).")
            else:
                why = ("Interrupted during submission before the input was uploaded: submit the payload "
                       "again (re-running the cell with the same inference_id continues a batch).")
            updates.append((record.inference_id, Status.SUBMITTING,
                            {"status": Status.ERROR, "submit_step": SubmitStep.DONE, "error": why,
                             "finished_at": time.time()}))
        return self.journal.update_many(updates) if updates else []

    def records(self, *, include_other_origins: bool = False, statuses: Iterable[Status] | None = None):
        return self.journal.query(statuses=statuses, origin=None if include_other_origins else self.origin)

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.stop()
        self.pool.shutdown(wait=True)
        self.journal.close()

    def __enter__(self) -> "AsyncInferenceClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        counts = self.journal.counts(self.origin)
        shown = ", ".join(f"{s.value.lower()}={n}" for s, n in counts.items()) or "nothing tracked"
        return f"<AsyncInferenceClient region={self.aws.region} ({shown})>"


