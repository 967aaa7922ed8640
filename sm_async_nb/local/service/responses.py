"""The InvokeEndpointAsync wire format (moto's ``responses.py``): request headers in, 202 answers
and AWS-shaped errors out. Domain state and domain errors live in ``models.py``.

Requests are validated with the same botocore-model rules the client uses
(``sm_async_nb.contract.validation``), so a request an unmodified boto3 sends with
``parameter_validation=False`` is refused here the way the service refuses it.

Errors use the rest-json error shape botocore reads: the ``x-amzn-ErrorType`` header carries the
code, the JSON body carries ``message``; botocore raises ``ClientError`` with
``Error.Code``/``Error.Message`` from them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Protocol

from werkzeug.wrappers import Response

from ...contract.validation import check_member, inline_body_limit, rules
from ...errors import ValidationError
from .faults import Fault
from .models import InvalidRequest, InvokeArgs, ServiceError


class Headers(Protocol):
    """What parse_invoke reads from request headers (werkzeug's Headers, or a dict)."""

    def get(self, key: str) -> str | None: ...

# Transient faults a runtime invoke may get (all retried by botocore's standard mode).
RUNTIME_FAULTS = (
    Fault(500, "InternalFailure", "An internal error occurred. Please try again."),
    Fault(503, "ServiceUnavailable", "The service is unavailable. Please try again."),
    Fault(400, "ThrottlingException", "Rate exceeded."),
    Fault(429, "ThrottlingException", "Too many requests. Please slow down."),
)

_ARG_NAMES = {
    "ContentType": "content_type", "Accept": "accept", "CustomAttributes": "custom_attributes",
    "InferenceId": "inference_id", "InputLocation": "input_location",
    "RequestTTLSeconds": "request_ttl_seconds", "InvocationTimeoutSeconds": "invocation_timeout_seconds",
    "S3OutputPathExtension": "s3_output_path_extension", "Filename": "filename",
}


def _check(member: str, value: object) -> None:
    try:
        check_member(member, value)
    except ValidationError as exc:
        raise InvalidRequest(str(exc)) from None


def _integer(member: str, raw: str) -> int:
    """An integer header as the service reads it: ASCII digits only (no ``6_0``, no ``٦٠``)."""
    text = raw.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        rule = rules()[member]
        raise InvalidRequest(f"{member} {raw!r} is invalid: it must be an integer from {rule.min} to {rule.max}.")
    return int(text)


def parse_invoke(endpoint_name: str, headers: Headers, body: bytes) -> InvokeArgs:
    """Validate one request as the service does; raise :class:`InvalidRequest` on the first problem."""
    _check("EndpointName", endpoint_name)
    values: dict[str, Any] = {}
    for member, rule in rules().items():
        if rule.header is None or member not in _ARG_NAMES:
            continue
        raw = headers.get(rule.header)
        if raw is None:
            continue
        if not raw.isascii():  # WSGI decodes header bytes as latin-1; show what the client sent
            raw = raw.encode("latin-1", "replace").decode("utf-8", "replace")
        value: object = _integer(member, raw) if rule.kind == "integer" else raw
        _check(member, value)
        values[_ARG_NAMES[member]] = value
    limit = inline_body_limit()
    if len(body) > limit:
        raise InvalidRequest(f"Value at 'body' failed to satisfy constraint: Member must have length "
                             f"less than or equal to {limit} (got {len(body):,} bytes); "
                             "upload larger payloads to S3 and pass InputLocation.")
    has_location = values.get("input_location") is not None
    if has_location and body:
        raise InvalidRequest("Exactly one of Body and InputLocation must be given; the request has both.")
    if not has_location and not body:
        raise InvalidRequest("Exactly one of Body and InputLocation must be given; the request has "
                             "neither (an empty Body does not count).")
    return InvokeArgs(endpoint_name=endpoint_name, body=body or None, **values)


def _request_id() -> str:
    return str(uuid.uuid4())


def error_response(status: int, code: str, message: str) -> Response:
    body = json.dumps({"__type": code, "message": message})
    return Response(body, status=status, content_type="application/json",
                    headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": _request_id()})


def service_error(exc: ServiceError) -> Response:
    return error_response(exc.status, exc.code, exc.message)


def render_fault(fault: Fault, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """A runtime fault as (status line, headers, body) for the fault middleware."""
    response = error_response(fault.status, fault.code, fault.message)
    headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
    return response.status, headers, response.get_data()


def accepted(inference_id: str, output_location: str, failure_location: str) -> Response:
    """The 202 answer botocore parses into InferenceId, OutputLocation and FailureLocation."""
    return Response(json.dumps({"InferenceId": inference_id}), status=202, content_type="application/json",
                    headers={"X-Amzn-SageMaker-OutputLocation": output_location,
                             "X-Amzn-SageMaker-FailureLocation": failure_location,
                             "x-amzn-RequestId": _request_id()})
