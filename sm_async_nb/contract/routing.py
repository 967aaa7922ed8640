"""Where a request goes (SPEC §20): an async endpoint, by its name, or a routing target of an inference
router, :class:`RoutingTarget`. One definition of how the two are told apart, validated and invoked,
for the client's every path (submit, resubmission, a job's queued rows) and for the journal.

The journal keeps a request's destination as one text, its *destination name*: an endpoint's name, or
``"router/target"`` for a routing target. Neither an endpoint's nor a router's nor a target's name may
hold a ``/`` (their pattern is ``[a-zA-Z0-9](-*[a-zA-Z0-9])*``), so the two never collide and every
view that groups, filters or shows rows by destination (the panel's column and filter, ``%sm_async
list``, a Filename's uniqueness) treats a routing target like an endpoint without knowing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from .validation import INVOKE_ENDPOINT_ASYNC, INVOKE_ROUTER_ASYNC, Operation, check_member, validate_request

SEPARATOR = "/"
ROUTER_MEMBER, TARGET_MEMBER = "InferenceRouterName", "RoutingTargetName"


@dataclass(frozen=True)
class RoutingTarget:
    """A routing target of a SageMaker inference router, accepted wherever an endpoint name is
    (``client.submit(sma.RoutingTarget("my-router", "my-target"), payload)``).

    Nothing is checked when it is made; a submission checks both names by InvokeInferenceRouterAsync's
    rules (botocore's model) before anything is uploaded.
    """

    router: str
    target: str

    def __str__(self) -> str:
        return f"{self.router}{SEPARATOR}{self.target}"

    @property
    def api_params(self) -> dict[str, str]:
        """InvokeInferenceRouterAsync's members naming it."""
        return {ROUTER_MEMBER: self.router, TARGET_MEMBER: self.target}


Destination = str | RoutingTarget


def routing_target_of(name: str | None) -> RoutingTarget | None:
    """The routing target a journaled destination name stands for; None for an endpoint's name."""
    if not name or SEPARATOR not in name:
        return None
    router, _, target = name.partition(SEPARATOR)
    return RoutingTarget(router, target)


def operation_of(name: str) -> Operation:
    """The operation a request to this destination name is sent with."""
    return INVOKE_ROUTER_ASYNC if SEPARATOR in name else INVOKE_ENDPOINT_ASYNC


def check_destination(destination: Any) -> str:
    """The destination name of an endpoint name or a :class:`RoutingTarget`, checked by the rules of the
    operation that will send it (botocore's model); no I/O.

    Raises:
        ValidationError: a name breaks its rule (naming it); not a str or RoutingTarget; a RoutingTarget
            with a botocore that does not know inference routers (one line naming the release needed).
    """
    if isinstance(destination, RoutingTarget):
        check_member(ROUTER_MEMBER, destination.router, INVOKE_ROUTER_ASYNC)
        check_member(TARGET_MEMBER, destination.target, INVOKE_ROUTER_ASYNC)
        return str(destination)
    if isinstance(destination, str) and SEPARATOR in destination:
        raise ValidationError(
            f"EndpointName {destination!r} is invalid: an endpoint name has no '/'. To send through an inference "
            "router, pass sma.RoutingTarget(router, target) (magics: ROUTER --routing-target TARGET).",
            parameter="EndpointName")
    if not isinstance(destination, str):
        raise ValidationError(f"The destination must be an endpoint name (str) or an sma.RoutingTarget, not "
                              f"{type(destination).__name__}.", parameter="EndpointName")
    return str(check_member("EndpointName", destination))


def destination_params(name: str) -> dict[str, str]:
    """The members naming a destination in its invoke: EndpointName, or InferenceRouterName and
    RoutingTargetName."""
    target = routing_target_of(name)
    return {"EndpointName": name} if target is None else target.api_params


def request_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A journaled request's invoke arguments, checked (``validation.validate_request`` with the destination
    named as its operation names it; ``params["endpoint_name"]`` is a destination name).

    Raises:
        ValidationError: a parameter breaks its rule.
    """
    target = routing_target_of(params.get("endpoint_name"))
    if target is None:
        return validate_request(params)
    rest = {key: value for key, value in params.items() if key != "endpoint_name"}
    check_destination(target)
    return {**target.api_params, **validate_request(rest, INVOKE_ROUTER_ASYNC)}


def check_request_member(name: str, member: str, value: Any) -> Any:
    """``check_member`` by the rules of the operation this destination's requests are sent with (a routing
    target's Filename may have 64 characters, an endpoint's 32)."""
    return check_member(member, value, operation_of(name))


def refuse_inline(name: str) -> None:
    """InvokeInferenceRouterAsync takes InputLocation only.

    Raises:
        ValidationError: ``name`` is a routing target.
    """
    if SEPARATOR in name:
        raise ValidationError(f"inline=True cannot be used with inference router routing target {name!r}: "
                              "InvokeInferenceRouterAsync takes the input from S3 (InputLocation) only; drop "
                              "inline=True.", parameter="inline")


__all__ = ["Destination", "RoutingTarget", "check_destination", "check_request_member", "destination_params",
           "operation_of", "refuse_inline", "request_params", "routing_target_of"]
