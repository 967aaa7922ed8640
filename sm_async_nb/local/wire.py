"""The InvokeEndpointAsync wire format: request headers in, 202 answers and AWS errors out.

Requests are validated with the same botocore-model rules the client uses
(``sm_async_nb.validation``), so a request an unmodified boto3 sends with
``parameter_validation=False`` is refused here the way the service refuses it.

Errors use the rest-json error shape botocore reads: the ``x-amzn-ErrorType`` header carries the
code, the JSON body carries ``message``; botocore raises ``ClientError`` with
``Error.Code``/``Error.Message`` from them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

from werkzeug.wrappers import Response

from ..errors import ValidationError
from ..validation import check_member, inline_body_limit, rules
from .backend import InvokeArgs
from .faults import Fault

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


class WireError(Exception):
    """An AWS-shaped error answer (status, code, message)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message)


def validation_error(message: str) -> WireError:
    return WireError(400, "ValidationError", f"1 validation error detected: {message}")


def _check(member: str, value: object) -> None:
    try:
        check_member(member, value)
    except ValidationError as exc:
        raise validation_error(str(exc)) from None


def parse_invoke(endpoint_name: str, headers: Mapping[str, str], body: bytes) -> InvokeArgs:
    """Validate one request as the service does; raise :class:`WireError` on the first problem."""
    _check("EndpointName", endpoint_name)
    values: dict[str, object] = {}
    for member, rule in rules().items():
        if rule.header is None or member not in _ARG_NAMES:
            continue
        raw = headers.get(rule.header)
        if raw is None:
            continue
        if not raw.isascii():  # WSGI decodes header bytes as latin-1; show what the client sent
            raw = raw.encode("latin-1", "replace").decode("utf-8", "replace")
        value: object = raw
        if rule.kind == "integer":
            try:
                value = int(raw.strip())
            except ValueError:
                raise validation_error(f"{member} {raw!r} is invalid: it must be an integer "
                                       f"from {rule.min} to {rule.max}.") from None
        _check(member, value)
        values[_ARG_NAMES[member]] = value
    limit = inline_body_limit()
    if len(body) > limit:
        raise validation_error(f"Value at 'body' failed to satisfy constraint: Member must have length "
                               f"less than or equal to {limit} (got {len(body):,} bytes); "
                               "upload larger payloads to S3 and pass InputLocation.")
    has_location = values.get("input_location") is not None
    if has_location and body:
        raise validation_error("Exactly one of Body and InputLocation must be given; the request has both.")
    if not has_location and not body:
        raise validation_error("Exactly one of Body and InputLocation must be given; the request has "
                               "neither (an empty Body does not count).")
    return InvokeArgs(endpoint_name=endpoint_name, body=body or None, **values)  # type: ignore[arg-type]


def _request_id() -> str:
    return str(uuid.uuid4())


def error_response(status: int, code: str, message: str) -> Response:
    body = json.dumps({"__type": code, "message": message})
    return Response(body, status=status, content_type="application/json",
                    headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": _request_id()})


def render_fault(fault: Fault, environ: dict) -> tuple[str, list[tuple[str, str]], bytes]:
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


def endpoint_not_found(name: str, account_id: str) -> WireError:
    return WireError(400, "ValidationError", f"Endpoint {name} of account {account_id} not found.")


def endpoint_not_async(name: str, account_id: str, config_name: str) -> WireError:
    return WireError(400, "ValidationError",
                     f"Endpoint {name} of account {account_id} is not configured for asynchronous "
                     f"inference: endpoint config {config_name} has no AsyncInferenceConfig. "
                     "Use InvokeEndpoint for real-time endpoints.")
