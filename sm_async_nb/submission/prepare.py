"""One request, prepared: its slot decided, its payload encoded (or the user's own S3 object taken
as its input), validated, and its journal row written out: a :class:`PreparedRequest`.

Both kinds of input go through :meth:`Preparer.prepare`: a payload is encoded here and later uploaded
to an input object named by its inference id (or sent inline); an :class:`S3Object` is the user's
own object, passed as InputLocation as it is and marked as theirs (never deleted). Everything here
happens before the first byte is uploaded, so a bad request leaves nothing in S3 and nothing in
the journal. Only once the request is known to be valid may the network be touched (to resolve the
default input bucket).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..context import Context
from ..contract import routing, validation
from ..errors import ValidationError
from ..payloads import EncodedPayload, encode
from ..records import RESUBMITTABLE, RESUMABLE, InvocationRecord, Status, SubmitStep, new_inference_id
from .inputs import InputPrefix, check_input_exists, input_uri
from .options import SubmitOptions
from .owners import owner_alive
from .s3_sources import S3Object


@dataclass(frozen=True)
class Slot:
    """Where one request sits: its inference id (None: a fresh one), the Filename of its output, its
    batch and position there, and the input rows it carries (first row, count) when it is a slice."""

    inference_id: str | None = None
    filename: str | None = None
    batch_id: str | None = None
    index: int | None = None
    rows: tuple[int, int] | None = None
    fresh_id: bool = False  # ``inference_id`` was generated here (a batch's made-up prefix), not given

    @property
    def named_by_user(self) -> bool:
        """The output is named by something the user chose (an inference id or a Filename): an earlier
        request's object may sit at its location."""
        return self.filename is not None or (self.inference_id is not None and not self.fresh_id)


@dataclass
class PreparedRequest:
    """A validated, encoded request whose journal row may or may not exist yet."""

    record: InvocationRecord
    api_params: dict[str, Any]                  # botocore kwargs except InputLocation / Body
    payload: EncodedPayload | None = None       # None: the input is already in S3 (the user's, or reused)
    existing: InvocationRecord | None = None    # the journal row when this is a retry
    done: bool = False                          # already submitted earlier: nothing to do

    @property
    def inference_id(self) -> str:
        return self.record.inference_id


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

    def prepare(self, endpoint_name: str, source: Any, options: SubmitOptions, slot: Slot,
                now: float | None = None) -> PreparedRequest:
        """One request of ``source``: an :class:`S3Object` (the user's own object, its input as it is) or
        a payload (encoded here by ``options.content_type``, then uploaded or sent inline).

        ``endpoint_name`` and ``options`` are already checked (``options.parse``); this checks the
        slot's id and Filename, the payload and the content type.

        Raises:
            ValidationError: before anything is sent.
        """
        now = now or self.ctx.clock()
        inference_id = slot.inference_id
        if inference_id is not None:
            validation.check_member("InferenceId", inference_id)
        if slot.filename is not None:  # a routing target's may be longer than an endpoint's
            routing.check_request_member(endpoint_name, "Filename", slot.filename)
        user_object = isinstance(source, S3Object)
        if user_object:
            payload, content_type = None, source.content_type
            size, sha256 = source.size, f"s3-etag:{source.etag}:{source.uri}"
            validation.check_member("InputLocation", str(source.uri))
        else:
            settings = self.ctx.settings
            payload = encode(source, options.content_type, default_content_type=settings.default_content_type,
                             csv_header=settings.csv_header, json_format=options.json_format,
                             default_json_format=settings.json_format)
            content_type, size, sha256 = payload.content_type, payload.size, payload.sha256
            if options.inline:
                validation.check_inline_body(size)
        validation.check_member("ContentType", content_type)
        inference_id = inference_id or new_inference_id(now)  # a generated UUIDv7 is always valid
        api = {**routing.destination_params(endpoint_name), **options.api_params(), "ContentType": content_type,
               "InferenceId": inference_id}
        request = {**options.request_fields(), "content_type": content_type}
        if slot.filename is not None:
            api["Filename"] = request["filename"] = slot.filename
        if user_object:
            location: str | None = str(source.uri)
        else:
            assert payload is not None
            location = None if options.inline else str(input_uri(self.inputs.get(), inference_id, payload.suffix))
        record = InvocationRecord(
            inference_id=inference_id, endpoint_name=endpoint_name, origin=self.ctx.origin, label=options.label,
            batch_id=slot.batch_id, batch_index=slot.index, row_start=slot.rows[0] if slot.rows else None,
            row_count=slot.rows[1] if slot.rows else None, request=request, inline=options.inline,
            input_location=location, input_size=size, input_sha256=sha256, submitted_at=now,
            user_input=user_object, named_by_user=slot.named_by_user)
        if slot.filename is not None:
            self._check_output_name_free(record)
        existing = self.ctx.journal.get(inference_id)
        if existing is None:
            return PreparedRequest(record, api, payload)
        if not continues(self.ctx, record, existing):
            return PreparedRequest(existing, api, payload, existing=existing, done=True)
        return PreparedRequest(existing.replace(submitted_at=record.submitted_at, input_location=location),
                               api, payload, existing=existing)

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
            return PreparedRequest(record.replace(submitted_at=self.ctx.clock(), input_location=location),
                                   routing.request_params(params), held, existing=record)
        if record.inline or not record.input_location:
            raise ValidationError(f"Invocation {record.inference_id} has no input in S3 to reuse (it was sent "
                                  "inline, or never uploaded, and this process no longer holds it): submit the "
                                  "payload again (re-running a batch with the same inference_id continues it).")
        check_input_exists(self.ctx, record)
        if record.status is Status.ERROR:
            params["inference_id"] = record.inference_id
            api = routing.request_params(params)
            return PreparedRequest(record.replace(submitted_at=self.ctx.clock()), api, None, existing=record)
        now = self.ctx.clock()
        fresh = record.replace(
            inference_id=new_inference_id(now), status=Status.SUBMITTING, submit_step=SubmitStep.JOURNALED,
            origin=self.ctx.origin, output_location=None, failure_location=None, submitted_at=now,
            invoked_at=None, finished_at=None, output_size=None, failure_reason=None, error=None,
            owner_pid=os.getpid(), deadline=None, clock_offset=None,
            named_by_user=record.request.get("filename") is not None)
        params["inference_id"] = fresh.inference_id
        return PreparedRequest(fresh, routing.request_params(params), None)

