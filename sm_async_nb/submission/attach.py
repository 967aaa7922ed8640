"""``client.attach``: follow an invocation that something else submitted (the AWS CLI, an SDK, a Lambda,
another kernel) by journaling it as PENDING at the locations its invoke answered. Nothing is sent; its
input is the user's and is never touched (the row has no input of ours: ``user_input``)."""

from __future__ import annotations

import os

from ..aws.s3uri import S3Uri
from ..context import Context
from ..contract.routing import Destination, check_destination
from ..contract.service import service_deadline
from ..contract.validation import check_member
from ..errors import ValidationError
from ..records import InvocationRecord, Status, SubmitStep
from .options import check_label


def _location(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise ValidationError(f"{name} must be an S3 URI such as s3://bucket/prefix/ID.out (as InvokeEndpointAsync "
                              f"answered it), not {value!r}.", parameter=name)
    try:
        uri = S3Uri.parse(value)
    except ValueError as exc:
        raise ValidationError(f"{name} must be an S3 URI (s3://bucket/key), as InvokeEndpointAsync answered it: "
                              f"{exc}", parameter=name) from None
    if not uri.key or uri.key.endswith("/"):
        raise ValidationError(f"{name} {value!r} names a folder; give the object's URI (the OutputLocation / "
                              "FailureLocation the invoke answered).", parameter=name)
    return str(uri)


def attach(ctx: Context, endpoint_name: Destination, inference_id: str, output_location: str,
           failure_location: str | None, label: str | None) -> InvocationRecord:
    """Journal an invocation submitted elsewhere (or return its row when it is already tracked here).

    Raises:
        ValidationError: a bad name, id or location; or the id is tracked for another endpoint.
    """
    endpoint_name = check_destination(endpoint_name)
    check_member("InferenceId", inference_id)
    output = _location("output_location", output_location)
    failure = None if failure_location is None else _location("failure_location", failure_location)
    if label is not None:
        check_label(label)
    now = ctx.clock()
    record = InvocationRecord(
        inference_id=inference_id, endpoint_name=endpoint_name, status=Status.PENDING, submit_step=SubmitStep.DONE,
        origin=ctx.origin, label=label, request={}, input_location=None, output_location=output,
        failure_location=failure, submitted_at=now, invoked_at=now, deadline=service_deadline({}, now),
        owner_pid=os.getpid(), user_input=True, named_by_user=False)
    existing = ctx.journal.attach(record)
    if existing is None:
        return record
    if existing.endpoint_name != endpoint_name or existing.origin != ctx.origin:
        raise ValidationError(f"Invocation {inference_id!r} is already tracked for endpoint "
                              f"{existing.endpoint_name!r}" + ("" if existing.origin == ctx.origin else
                                                               " of another AWS target") +
                              f", not {endpoint_name!r}: nothing was attached.", parameter="inference_id")
    if existing.output_location not in (None, output):
        raise ValidationError(f"Invocation {inference_id!r} is already tracked with output "
                              f"{existing.output_location}, not {output}: nothing was attached.",
                              parameter="output_location")
    return existing
