"""The inference routers of the emulated control plane (SPEC §20): what CreateInferenceRouter,
DescribeInferenceRouter, UpdateInferenceRouter, DeleteInferenceRouter and ListInferenceRouters keep
and answer — moto has no routers, so the stack answers these itself (``motoserver/sagemaker.py``
sends them here).

Requests are checked as AWS checks them: first every rule of botocore's model for the operation
(required members, lengths, ranges, patterns, enums; ``contract.validation.check_input``, worded as
AWS's ValidationException), then what the service checks beyond the model, as the operations'
documentation states it:

* routing-target names are unique within a router, a destination appears once in a target;
* a destination of an asynchronous target (one with AsyncInferenceConfig) must be an asynchronous
  endpoint, one of a real-time target must not be — an endpoint of this account and Region whose
  mode is known and wrong is refused; one that cannot be checked (it does not exist, or is in
  another account or Region) is accepted, and DescribeInferenceRouter shows it ``Unroutable``
  (missing here) or ``Unknown`` (elsewhere), as AWS does;
* ``InstancePoolOrder`` needs endpoints listing two or more instance types: the stack's endpoints
  have one each, so it is refused with what to use instead;
* a name already taken is ``ResourceAlreadyExists``; an unknown router ``ResourceNotFound``; updating
  or deleting a router that is Creating or Updating ``ConflictException``. A ClientToken seen before
  with the same request answers the same ARN (botocore fills one in for every create).

A router is ``Creating`` (an update: ``Updating``, the previous routing targets serving meanwhile)
until ``create_seconds`` have passed on the emulated clock, as endpoints are, then ``InService``;
the status is settled whenever it is read, so no thread is involved. DescribeInferenceRouter checks
each destination when called (``RoutingStatus``). Routing requests is ``routing.py``'s business.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ...contract.names import INSTANCE_POOL_ORDER, LOCAL_REGION_FIRST, router_arn
from ...contract.service import DEFAULT_MAX_TIME_IN_BACKLOG_SECONDS
from ...contract.validation import Operation, check_input
from ...errors import ValidationError
from .lifecycle import CREATING, IN_SERVICE, UPDATING, ControlPlaneError

log = logging.getLogger(__name__)

SINCE = "1.44"  # the botocore release that brought inference routers
CREATE, DESCRIBE, UPDATE, DELETE, LIST = (Operation("sagemaker", verb, SINCE) for verb in (
    "CreateInferenceRouter", "DescribeInferenceRouter", "UpdateInferenceRouter", "DeleteInferenceRouter",
    "ListInferenceRouters"))
TAG_OPERATIONS = frozenset({"ListTags", "AddTags", "DeleteTags"})  # answered here for a router's ARN
OPERATIONS = frozenset({CREATE.name, DESCRIBE.name, UPDATE.name, DELETE.name, LIST.name})
DEFAULT_LIST_RESULTS = 10  # SageMaker's List* operations return 10 unless MaxResults says otherwise


class ResourceNotFound(ControlPlaneError):
    code = "ResourceNotFound"


class ResourceAlreadyExists(ControlPlaneError):
    code = "ResourceAlreadyExists"


class Conflict(ControlPlaneError):
    code = "ConflictException"


class DestinationCheck(Protocol):
    """What the control plane checks of a destination (``routing.LocalDestinations``)."""

    def mode(self, arn: str) -> tuple[str, bool, str] | None:
        """(kind, asynchronous, endpoint config name) of a destination of this account and Region
        that exists; None when it cannot be checked (missing, or elsewhere)."""
        ...

    def routing_status(self, arn: str, asynchronous: bool) -> str:
        """Routable, Unroutable or Unknown, checked now."""
        ...


@dataclass(frozen=True)
class Target:
    """One routing target as configured (``given`` is what the request said, echoed by Describe)."""

    name: str
    destinations: tuple[str, ...]
    asynchronous: bool
    output_path: str | None
    failure_path: str | None
    success_topic: str | None
    error_topic: str | None
    max_backlog_seconds: int
    preference: str
    given: dict[str, Any] = field(compare=False)

    @classmethod
    def of(cls, given: dict[str, Any]) -> Target:
        """A target from a request that passed the model's rules."""
        async_config = given.get("AsyncInferenceConfig")
        output = (async_config or {}).get("OutputConfig") or {}
        topics = output.get("NotificationConfig") or {}
        client = (async_config or {}).get("ClientConfig") or {}
        backlog = client.get("MaxTimeInBacklogSeconds") or DEFAULT_MAX_TIME_IN_BACKLOG_SECONDS
        return cls(name=given["Name"], destinations=tuple(d["ResourceArn"] for d in given["Destinations"]),
                   asynchronous=async_config is not None, output_path=output.get("S3OutputPath"),
                   failure_path=output.get("S3FailurePath"), success_topic=topics.get("SuccessTopic"),
                   error_topic=topics.get("ErrorTopic"),
                   max_backlog_seconds=int(backlog),
                   preference=given.get("RoutingPreference") or LOCAL_REGION_FIRST,
                   given={k: v for k, v in given.items() if k != "Destinations"})


@dataclass
class Router:
    """One inference router. ``pending``: the routing targets of an update not yet in effect."""

    name: str
    arn: str
    targets: tuple[Target, ...]
    status: str
    created_at: float  # wall clock
    last_modified: float
    ready_clock: float  # emulated clock: Creating/Updating until then
    tags: list[dict[str, str]] = field(default_factory=list)
    pending: tuple[Target, ...] | None = None

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


class Routers:
    """The routers of this account and Region; thread-safe. No lock is held while checking destinations."""

    def __init__(self, destinations: DestinationCheck, clock: Callable[[], float], *, create_seconds: float = 0.0,
                 account_id: str = "123456789012", region: str = "us-east-1", wall: Callable[[], float] = time.time):
        self.destinations, self.clock, self.wall = destinations, clock, wall
        self.create_seconds, self.account_id, self.region = create_seconds, account_id, region
        self._routers: dict[str, Router] = {}
        self._tokens: dict[str, tuple[dict[str, Any], str]] = {}  # ClientToken -> (request, ARN)
        self._lock = threading.Lock()

    def arn(self, name: str) -> str:
        return router_arn(self.region, self.account_id, name)

    # -- what the runtime reads --------------------------------------------------------------------
    def find(self, name: str) -> Router | None:
        """Router ``name`` with its status settled (a copy: the caller may read it without a lock)."""
        with self._lock:
            router = self._routers.get(name)
            if router is None:
                return None
            self._settle(router)
            return replace(router)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._routers)

    # -- the control plane -------------------------------------------------------------------------
    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Answer one control-plane operation (:data:`OPERATIONS`, or a tag operation on a router's ARN).

        Raises:
            ControlPlaneError: refused as AWS refuses it (``code`` is AWS's error code).
        """
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            CREATE.name: self._create, DESCRIBE.name: self._describe, UPDATE.name: self._update,
            DELETE.name: self._delete, LIST.name: self._list, "ListTags": self._list_tags,
            "AddTags": self._add_tags, "DeleteTags": self._delete_tags}
        return handlers[operation](params)

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        _check(CREATE, params)
        name = params["InferenceRouterName"]
        token = params.get("ClientToken")
        targets = self._targets(params["RoutingTargets"])
        with self._lock:
            seen = self._tokens.get(token) if token else None
            if seen is not None:
                if seen[0] != params:
                    raise ControlPlaneError(f"ClientToken {token} was already used with other parameters; use a new "
                                            "ClientToken for a new request.")
                return {"InferenceRouterArn": seen[1]}
            if name in self._routers:
                raise ResourceAlreadyExists(f'Cannot create already existing inference router "{self.arn(name)}".')
            now = self.wall()
            router = Router(name=name, arn=self.arn(name), targets=targets, status=CREATING, created_at=now,
                            last_modified=now, ready_clock=self.clock() + self.create_seconds,
                            tags=list(params.get("Tags") or []))
            self._settle(router)
            self._routers[name] = router
            if token:
                self._tokens[token] = (params, router.arn)
        log.info("inference router %s created with routing targets %s", name, [t.name for t in targets])
        return {"InferenceRouterArn": router.arn}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        _check(UPDATE, params)
        name = params["InferenceRouterName"]
        self._existing(name)  # an unknown router is ResourceNotFound before its targets are checked
        targets = self._targets(params["RoutingTargets"])
        with self._lock:
            router = self._routers.get(name)
            if router is None:
                raise self._not_found(name)
            self._settle(router)
            if router.status != IN_SERVICE:
                raise Conflict(f'Cannot update in-progress inference router "{router.arn}" (it is {router.status}).')
            router.pending, router.status = targets, UPDATING
            router.ready_clock, router.last_modified = self.clock() + self.create_seconds, self.wall()
            self._settle(router)
        log.info("inference router %s updated: routing targets %s", name, [t.name for t in targets])
        return {"InferenceRouterArn": router.arn}

    def _delete(self, params: dict[str, Any]) -> dict[str, Any]:
        _check(DELETE, params)
        name = params["InferenceRouterName"]
        with self._lock:
            router = self._routers.get(name)
            if router is None:
                raise self._not_found(name)
            self._settle(router)
            if router.status in (CREATING, UPDATING):
                raise Conflict(f'Cannot delete in-progress inference router "{router.arn}" (it is {router.status}).')
            del self._routers[name]
        log.info("inference router %s deleted", name)
        return {}

    def _describe(self, params: dict[str, Any]) -> dict[str, Any]:
        _check(DESCRIBE, params)
        router = self._existing(params["InferenceRouterName"])
        targets = []
        for target in router.pending or router.targets:  # what was asked for last; requests use it once InService
            destinations = [{"ResourceArn": arn, "RoutingStatus": self.destinations.routing_status(
                arn, target.asynchronous)} for arn in target.destinations]
            targets.append({"Name": target.name, "Destinations": destinations,
                            **{k: v for k, v in target.given.items() if k != "Name"}})
        return {"InferenceRouterName": router.name, "InferenceRouterArn": router.arn, "RoutingTargets": targets,
                "Status": router.status, "CreationTime": router.created_at, "LastModifiedTime": router.last_modified}

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        _check(LIST, params)
        size = int(params.get("MaxResults") or DEFAULT_LIST_RESULTS)
        token = params.get("NextToken") or "0"
        if not token.isdigit():
            raise ControlPlaneError(f"NextToken {token!r} is not a token an earlier ListInferenceRouters answered.")
        start = int(token)
        with self._lock:
            routers = sorted(self._routers.values(), key=lambda r: (r.created_at, r.name), reverse=True)
        page = routers[start:start + size]
        answer: dict[str, Any] = {"InferenceRouters": [
            {"InferenceRouterName": r.name, "InferenceRouterArn": r.arn, "CreationTime": r.created_at,
             "LastModifiedTime": r.last_modified} for r in page]}
        if start + size < len(routers):
            answer["NextToken"] = str(start + size)
        return answer

    def _list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Tags": list(self._tagged(params).tags)}

    def _add_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        router = self._tagged(params)
        added = {tag["Key"]: tag for tag in params.get("Tags") or []}
        with self._lock:
            current = self._routers.get(router.name)
            if current is None:
                raise self._not_found(router.name)
            current.tags = [tag for tag in current.tags if tag["Key"] not in added] + list(added.values())
        return {"Tags": list(added.values())}

    def _delete_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        router = self._tagged(params)
        dropped = set(params.get("TagKeys") or [])
        with self._lock:
            current = self._routers.get(router.name)
            if current is None:
                raise self._not_found(router.name)
            current.tags = [tag for tag in current.tags if tag["Key"] not in dropped]
        return {}

    # -- helpers -----------------------------------------------------------------------------------
    def _tagged(self, params: dict[str, Any]) -> Router:
        arn = str(params.get("ResourceArn", ""))
        return self._existing(arn.rsplit("/", 1)[-1])

    def _existing(self, name: str) -> Router:
        router = self.find(name)
        if router is None:
            raise self._not_found(name)
        return router

    def _not_found(self, name: str) -> ResourceNotFound:
        return ResourceNotFound(f'Could not find inference router "{self.arn(name)}".')

    def _settle(self, router: Router) -> None:
        """Creating/Updating → InService once ``create_seconds`` passed (the caller holds the lock)."""
        if router.status in (CREATING, UPDATING) and self.clock() >= router.ready_clock:
            if router.pending is not None:
                router.targets, router.pending = router.pending, None
            router.status, router.last_modified = IN_SERVICE, self.wall()
            log.info("inference router %s is InService", router.name)

    def _targets(self, given: list[dict[str, Any]]) -> tuple[Target, ...]:
        """The routing targets of a request, checked beyond the model's rules.

        Raises:
            ControlPlaneError: a name twice, a destination twice, a destination of the wrong mode, or
                InstancePoolOrder (one line, naming the target and the destination).
        """
        targets = tuple(Target.of(item) for item in given)
        seen: set[str] = set()
        for target in targets:
            if target.name in seen:
                raise ControlPlaneError(f"Routing target names must be unique within an inference router; "
                                        f"{target.name} appears more than once.")
            seen.add(target.name)
            twice = sorted({arn for arn in target.destinations if target.destinations.count(arn) > 1})
            if twice:
                raise ControlPlaneError(f"Destination {twice[0]} appears more than once in routing target "
                                        f"{target.name}; each destination can appear only once.")
            if target.preference == INSTANCE_POOL_ORDER:
                raise ControlPlaneError(
                    f"Routing target {target.name}: InstancePoolOrder needs every destination to be an endpoint "
                    "that lists two or more instance types; " + (
                        "the local stack's endpoints have one each: use LocalRegionFirst." if target.asynchronous
                        else "it is supported only for asynchronous routing targets."))
            for arn in target.destinations:
                self._check_mode(target, arn)
        return targets

    def _check_mode(self, target: Target, arn: str) -> None:
        found = self.destinations.mode(arn)
        if found is None:
            return  # cannot be checked (missing here, or another account or Region): accepted, as AWS does
        kind, asynchronous, config_name = found
        if target.asynchronous and (kind != "endpoint" or not asynchronous):
            what = (f"its endpoint config {config_name} has no AsyncInferenceConfig" if kind == "endpoint"
                    else f"it is an {kind}")
            raise ControlPlaneError(f"Destination {arn} of asynchronous routing target {target.name} is not an "
                                    f"asynchronous inference endpoint ({what}); an asynchronous routing target "
                                    "takes asynchronous endpoints only.")
        if not target.asynchronous and asynchronous:
            raise ControlPlaneError(f"Destination {arn} of real-time routing target {target.name} is an asynchronous "
                                    "inference endpoint; add AsyncInferenceConfig to the routing target to route "
                                    "asynchronous requests to it.")


def _check(operation: Operation, params: dict[str, Any]) -> None:
    try:
        check_input(operation, params)
    except ValidationError as exc:
        raise ControlPlaneError(str(exc)) from None
