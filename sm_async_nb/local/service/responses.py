"""The wire format of InvokeEndpointAsync and InvokeInferenceRouterAsync (moto's ``responses.py``):
request headers in, 202 answers and AWS-shaped errors out. Domain state and domain errors live in
``models.py``.

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

from ...contract.validation import (
    INVOKE_ENDPOINT_ASYNC,
    INVOKE_ROUTER_ASYNC,
    Operation,
    check_member,
    inline_body_limit,
    required,
    rules,
)
from ...errors import ValidationError
from .faults import Fault
from .models import InvalidRequest, InvalidRouterRequest, InvokeArgs, ServiceError


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


def _check(member: str, value: object, operation: Operation = INVOKE_ENDPOINT_ASYNC) -> None:
    try:
        check_member(member, value, operation)
    except ValidationError as exc:
        raise InvalidRequest(str(exc)) from None


def _integer(member: str, raw: str, operation: Operation) -> int:
    """An integer header as the service reads it: ASCII digits only (no ``6_0``, no ``٦٠``)."""
    text = raw.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        rule = rules(operation)[member]
        raise InvalidRequest(f"{member} {raw!r} is invalid: it must be an integer from {rule.min} to {rule.max}.")
    return int(text)


def _headers(operation: Operation, headers: Headers) -> dict[str, Any]:
    """Every header member of ``operation`` the request carries, checked by the model's rules, by member."""
    values: dict[str, Any] = {}
    for member, rule in rules(operation).items():
        if rule.header is None:
            continue
        raw = headers.get(rule.header)
        if raw is None:
            continue
        if not raw.isascii():  # WSGI decodes header bytes as latin-1; show what the client sent
            raw = raw.encode("latin-1", "replace").decode("utf-8", "replace")
        value: object = _integer(member, raw, operation) if rule.kind == "integer" else raw
        _check(member, value, operation)
        values[member] = value
    return values


def parse_invoke(endpoint_name: str, headers: Headers, body: bytes) -> InvokeArgs:
    """Validate one InvokeEndpointAsync request as the service does; raise :class:`InvalidRequest` on the
    first problem."""
    _check("EndpointName", endpoint_name)
    values = {_ARG_NAMES[m]: v for m, v in _headers(INVOKE_ENDPOINT_ASYNC, headers).items() if m in _ARG_NAMES}
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


def parse_router_invoke(router_name: str, headers: Headers, body: bytes) -> tuple[str, InvokeArgs]:
    """Validate one InvokeInferenceRouterAsync request as the service does: (routing target name, the
    request). It takes InputLocation only (the model has no Body).

    Raises:
        InvalidRequest: the first problem.
    """
    try:
        _check("InferenceRouterName", router_name, INVOKE_ROUTER_ASYNC)
        values = _headers(INVOKE_ROUTER_ASYNC, headers)
        for member in required(INVOKE_ROUTER_ASYNC):  # RoutingTargetName and InputLocation, from the model
            if rules(INVOKE_ROUTER_ASYNC)[member].header is not None and values.get(member) is None:
                name = member[:1].lower() + member[1:]
                raise InvalidRequest(f"Value null at '{name}' failed to satisfy constraint: Member must not be null")
        if body:
            raise InvalidRequest("InvokeInferenceRouterAsync takes its input from InputLocation only; the request "
                                 "has a body. Upload the payload to S3 and pass its location.")
    except InvalidRequest as exc:
        raise InvalidRouterRequest(exc.message) from None
    target = str(values.pop("RoutingTargetName"))
    return target, InvokeArgs(endpoint_name="", **{_ARG_NAMES[m]: v for m, v in values.items() if m in _ARG_NAMES})


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
