"""Validate → encode → decide the journal row: a request becomes a :class:`PreparedRequest`.

Everything here happens before the first byte is uploaded, so a bad request (or one bad payload
in a batch) leaves nothing in S3 and nothing in the journal. Only after the request is known to
be valid may the network be touched (to resolve the default input bucket).
"""

from __future__ import annotations

import difflib
import os
import time
from dataclasses import dataclass, fields
from typing import Any

from ..context import Context
from ..contract import validation
from ..errors import ValidationError
from ..payloads import EncodedPayload, encode
from ..records import REQUEST_FIELDS, RESUBMITTABLE, RESUMABLE, InvocationRecord, Status, SubmitStep, new_inference_id
from .inputs import InputPrefix, check_input_exists, input_uri
from .owners import owner_alive
from .s3_sources import S3Object


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

    @classmethod
    def of(cls, **options: Any) -> RequestOptions:
        """The options from keyword arguments, naming any that do not exist (a typo is one line).

        Raises:
            ValidationError: an unknown option.
        """
        known = [f.name for f in fields(cls)]
        unknown = [name for name in options if name not in known]
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValidationError(f"Unknown option {unknown[0]!r}{hint}; the options are: {', '.join(known)}.",
                                  parameter=unknown[0])
        return cls(**options)


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


def per_item(name: str, value: Any, count: int) -> list[Any]:
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


def continues(ctx: Context, record: InvocationRecord, existing: InvocationRecord) -> bool:
    """For a request whose inference id is already journaled: True to send it (again), False when it
    is already submitted or being submitted right now (nothing more to do).

    Raises:
        ValidationError: the id belongs to another AWS target, or to a different request.
    """
    iid = record.inference_id
    if existing.origin != ctx.origin:
        region, *_, runtime = existing.origin.split("|")
        raise ValidationError(
            f"InferenceId {iid!r} is already tracked against another AWS target ({region or '?'} at {runtime}): "
            "ids name journal rows and input objects, so choose another id (or leave it out to get a fresh "
            "one).", parameter="InferenceId")
    if existing.endpoint_name != record.endpoint_name or existing.input_sha256 != record.input_sha256:
        raise ValidationError(
            f"InferenceId {iid!r} was already used for a different request (another endpoint "
            "or payload): choose a new id, or leave it out to get a fresh one.", parameter="InferenceId")
    if existing.status not in RESUMABLE:
        return False
    # SUBMITTING by a live process (this one included: another thread) is being sent right now.
    return not (existing.status is Status.SUBMITTING and owner_alive(existing.owner_pid))


class Preparer:
    """Turns what a user asked for into prepared requests (and resubmissions)."""

    def __init__(self, ctx: Context, inputs: InputPrefix):
        self.ctx = ctx
        self.inputs = inputs

    def prepare(self, endpoint_name: str, payload: Any, options: RequestOptions, *,
                inference_id: str | None, filename: str | None, now: float | None = None,
                batch_id: str | None = None, batch_index: int | None = None,
                rows: tuple[int, int] | None = None) -> PreparedRequest:
        """Raises ValidationError before anything is sent."""
        params: dict[str, Any] = {
            "endpoint_name": endpoint_name, "content_type": options.content_type, "accept": options.accept,
            "custom_attributes": options.custom_attributes, "inference_id": inference_id,
            "request_ttl_seconds": options.request_ttl_seconds,
            "invocation_timeout_seconds": options.invocation_timeout_seconds,
            "s3_output_path_extension": options.s3_output_path_extension, "filename": filename,
        }
        api = validation.validate_request(params)
        params.update({k: api[m] for k, m in validation.PARAMETER_NAMES.items() if m in api})  # as sent
        if options.label is not None and not isinstance(options.label, str):
            raise ValidationError(f"label must be a string, not {type(options.label).__name__}.", parameter="label")
        settings = self.ctx.settings
        encoded = encode(payload, options.content_type, default_content_type=settings.default_content_type,
                         csv_header=settings.csv_header)
        validation.check_member("ContentType", encoded.content_type)
        if options.inline:
            validation.check_inline_body(encoded.size)
        inference_id = inference_id or new_inference_id(now)  # a generated UUIDv7 is always valid
        params.update(content_type=encoded.content_type, inference_id=inference_id)
        api.update(ContentType=encoded.content_type, InferenceId=inference_id)
        request = {k: params[k] for k in REQUEST_FIELDS if params.get(k) is not None}
        location = None if options.inline else str(input_uri(self.inputs.get(), inference_id, encoded.suffix))
        record = InvocationRecord(
            inference_id=inference_id, endpoint_name=endpoint_name, origin=self.ctx.origin, label=options.label,
            batch_id=batch_id, batch_index=batch_index, row_start=rows[0] if rows else None,
            row_count=rows[1] if rows else None, request=request, inline=options.inline,
            input_location=location, input_size=encoded.size, input_sha256=encoded.sha256,
            submitted_at=now or time.time())
        if filename is not None:
            self._check_output_name_free(record)
        existing = self.ctx.journal.get(inference_id)
        if existing is None:
            return PreparedRequest(record, api, encoded)
        if not continues(self.ctx, record, existing):
            return PreparedRequest(existing, api, encoded, existing=existing, done=True)
        return PreparedRequest(existing.replace(submitted_at=record.submitted_at, input_location=location),
                               api, encoded, existing=existing)

    def prepare_s3(self, endpoint_name: str, obj: S3Object, options: RequestOptions, *, inference_id: str | None,
                   now: float, batch_id: str, batch_index: int) -> PreparedRequest:
        """A request whose input is the user's own object: InputLocation is the object, nothing is
        uploaded, and the journal marks it as the user's (never deleted)."""
        params: dict[str, Any] = {
            "endpoint_name": endpoint_name, "content_type": obj.content_type, "accept": options.accept,
            "custom_attributes": options.custom_attributes, "inference_id": inference_id,
            "request_ttl_seconds": options.request_ttl_seconds,
            "invocation_timeout_seconds": options.invocation_timeout_seconds,
            "s3_output_path_extension": options.s3_output_path_extension, "input_location": str(obj.uri)}
        api = validation.validate_request(params)
        params.update({k: api[m] for k, m in validation.PARAMETER_NAMES.items() if m in api})
        api.pop("InputLocation")  # the sender adds it, as for uploaded inputs
        inference_id = inference_id or new_inference_id(now)
        params["inference_id"] = api["InferenceId"] = inference_id
        request = {k: params[k] for k in REQUEST_FIELDS if params.get(k) is not None}
        record = InvocationRecord(
            inference_id=inference_id, endpoint_name=endpoint_name, origin=self.ctx.origin, label=options.label,
            batch_id=batch_id, batch_index=batch_index, request=request, input_location=str(obj.uri),
            input_size=obj.size, input_sha256=f"s3-etag:{obj.etag}:{obj.uri}", submitted_at=now, user_input=True)
        existing = self.ctx.journal.get(inference_id)
        if existing is None:
            return PreparedRequest(record, api, None)
        if not continues(self.ctx, record, existing):
            return PreparedRequest(existing, api, None, existing=existing, done=True)
        return PreparedRequest(existing.replace(submitted_at=now), api, None, existing=existing)

    def _check_output_name_free(self, record: InvocationRecord) -> None:
        """A Filename names the output object: a second live request with it would overwrite the first's
        output (and the tracker could not tell them apart)."""
        other = self.ctx.journal.output_name_taken(
            self.ctx.origin, record.endpoint_name, record.request["filename"],
            record.request.get("s3_output_path_extension"), exclude=record.inference_id)
        if other is not None:
            raise ValidationError(
                f"Filename {record.request['filename']!r} already names the output of invocation "
                f"{other.inference_id} ({other.status.value}) on {record.endpoint_name!r}: a second request would "
                "overwrite it. Choose another Filename (or an S3OutputPathExtension), or forget that invocation "
                "first.", parameter="Filename")

    def resubmission(self, record: InvocationRecord, held: EncodedPayload | None = None) -> PreparedRequest:
        """ERROR rows (never reached SageMaker) keep their inference id: their input in S3 is reused,
        or, if it was never written, the payload ``held`` in memory is sent. FAILED/EXPIRED rows get a
        new id (the old one already has a failure object) in the same batch slot, reusing the input."""
        if record.status not in RESUBMITTABLE:
            raise ValidationError(f"Invocation {record.inference_id} is {record.status.value}: "
                                  "only ERROR, FAILED or EXPIRED invocations can be resubmitted.")
        params = {"endpoint_name": record.endpoint_name, **record.request}
        if record.status is Status.ERROR and held is not None:
            params["inference_id"] = record.inference_id
            location = None if record.inline else str(input_uri(self.inputs.get(), record.inference_id, held.suffix))
            return PreparedRequest(record.replace(submitted_at=time.time(), input_location=location),
                                   validation.validate_request(params), held, existing=record)
        if record.inline or not record.input_location:
            raise ValidationError(f"Invocation {record.inference_id} has no input in S3 to reuse (it was sent "
                                  "inline, or never uploaded, and this process no longer holds it): submit the "
                                  "payload again (re-running a batch with the same inference_id continues it).")
        check_input_exists(self.ctx, record)
        if record.status is Status.ERROR:
            params["inference_id"] = record.inference_id
            api = validation.validate_request(params)
            return PreparedRequest(record.replace(submitted_at=time.time()), api, None, existing=record)
        fresh = record.replace(
            inference_id=new_inference_id(), status=Status.SUBMITTING, submit_step=SubmitStep.JOURNALED,
            origin=self.ctx.origin, output_location=None, failure_location=None, submitted_at=time.time(),
            invoked_at=None, finished_at=None, output_size=None, failure_reason=None, error=None,
            owner_pid=os.getpid(), deadline=None)
        params["inference_id"] = fresh.inference_id
        return PreparedRequest(fresh, validation.validate_request(params), None)

