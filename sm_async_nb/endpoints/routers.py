"""``RouterMonitor``: one cached :class:`RouterStatus` per inference router (SPEC §20).

A fetch is one DescribeInferenceRouter (the routing targets, each destination's RoutingStatus) plus, for
each destination that is an endpoint of this account and Region (readable with the caller's
credentials), the endpoint monitor's cached :class:`EndpointStatus` — per router and per endpoint,
never per invocation. The caller's account is asked once (sts:GetCallerIdentity) to tell its endpoints
from another account's.

Warnings (one actionable line each): the router is not InService; a destination is Unroutable (the
router sends nothing there); every destination of a target has 0 instances and none scales out from
zero (requests wait until they expire); this client's unfinished requests to a target have a
RequestTTLSeconds shorter than its MaxTimeInBacklogSeconds, so they expire before they can ever move.
Like the endpoint monitor it never raises for AWS trouble: that becomes a warning of the snapshot.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from ..aws.clients import RESOURCE_NOT_FOUND_CODES, error_code, explain
from ..context import Context
from ..contract.names import ROUTABLE, UNROUTABLE
from ..contract.routing import routing_target_of
from ..contract.service import DEFAULT_MAX_TIME_IN_BACKLOG_SECONDS, DEFAULT_TTL_SECONDS
from ..records import UNFINISHED
from .monitor import DEFAULT_MAX_AGE_S, EndpointMonitor
from .router_status import DestinationStatus, RouterStatus, RoutingTargetStatus
from .rules import IN_SERVICE

log = logging.getLogger(__name__)

_ENDPOINT_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
                           r"endpoint/(?P<name>[^/]+)")


class RouterMonitor:
    """Router status snapshots with a cache, for one client's context."""

    def __init__(self, ctx: Context, endpoints: EndpointMonitor, *, clock: Callable[[], float] = time.time):
        self.ctx = ctx
        self.endpoints = endpoints
        self.clock = clock
        self._cache: dict[str, RouterStatus] = {}
        self._fetching: dict[str, threading.Lock] = {}
        self._account: str | None = None
        self._lock = threading.Lock()

    def cached(self, name: str) -> RouterStatus | None:
        """The last snapshot of router ``name``, however old (None: never fetched)."""
        with self._lock:
            return self._cache.get(name)

    def status(self, name: str, max_age: float = DEFAULT_MAX_AGE_S) -> RouterStatus:
        """The snapshot of router ``name``, from the cache when younger than ``max_age`` s (0: fetch now);
        its destinations' endpoint statuses come from the endpoint monitor's cache under the same rule."""
        with self._lock:
            fetching = self._fetching.setdefault(name, threading.Lock())
        with fetching:
            hit = self.cached(name)
            if hit is not None and self.clock() - hit.fetched_at < max_age:
                return hit
            snapshot = self._fetch(name, max_age)
            with self._lock:
                self._cache[name] = snapshot
            return snapshot

    def _fetch(self, name: str, max_age: float) -> RouterStatus:
        now = self.clock()
        try:
            described = self.ctx.aws.sagemaker.describe_inference_router(InferenceRouterName=name)
        except Exception as exc:
            if error_code(exc) in RESOURCE_NOT_FOUND_CODES:
                return RouterStatus(name=name, exists=False, fetched_at=now, warnings=[
                    f"{explain(exc).message.rstrip('.')}: check the name and region "
                    "(aws sagemaker list-inference-routers)."])
            log.info("Reading inference router %s failed: %s", name, exc)
            return RouterStatus(name=name, exists=None, fetched_at=now,
                                warnings=[f"Could not read inference router {name!r}: {explain(exc).message}"])
        targets = tuple(self._target(t, max_age) for t in described.get("RoutingTargets") or ())
        snapshot = RouterStatus(name=name, status=described.get("Status"), arn=described.get("InferenceRouterArn"),
                                status_reason=described.get("StatusReason"), targets=targets, fetched_at=now)
        return dataclasses.replace(snapshot, warnings=self._warnings(snapshot))

    def _target(self, target: dict[str, Any], max_age: float) -> RoutingTargetStatus:
        config = target.get("AsyncInferenceConfig") or {}
        output = config.get("OutputConfig") or {}
        backlog = (config.get("ClientConfig") or {}).get("MaxTimeInBacklogSeconds")
        if config and backlog is None:
            backlog = DEFAULT_MAX_TIME_IN_BACKLOG_SECONDS
        return RoutingTargetStatus(
            name=str(target.get("Name")), is_async=bool(config), max_time_in_backlog_s=backlog,
            output_path=output.get("S3OutputPath"), failure_path=output.get("S3FailurePath"),
            routing_preference=target.get("RoutingPreference"),
            destinations=tuple(self._destination(d, max_age) for d in target.get("Destinations") or ()))

    def _destination(self, destination: dict[str, Any], max_age: float) -> DestinationStatus:
        arn = str(destination.get("ResourceArn") or "")
        found = _ENDPOINT_ARN.fullmatch(arn)
        name = found["name"] if found else None
        account = self._caller_account() if found is not None else None
        readable = found is not None and found["region"] == self.ctx.aws.region and account in (None, found["account"])
        endpoint = self.endpoints.status(name, max_age) if readable and name else None
        if endpoint is not None and endpoint.exists is False:
            endpoint = None
        return DestinationStatus(arn=arn, routing_status=destination.get("RoutingStatus"), endpoint_name=name,
                                 endpoint=endpoint)

    def _caller_account(self) -> str | None:
        """This client's account (asked once); None when it cannot be read."""
        with self._lock:
            if self._account is not None:
                return self._account or None
        try:
            account = str(self.ctx.aws.get("sts").get_caller_identity()["Account"])
        except Exception as exc:
            log.info("sts:GetCallerIdentity failed (%s): destinations of this Region are read as this account's", exc)
            account = ""
        with self._lock:
            self._account = account
        return account or None

    def _warnings(self, st: RouterStatus) -> list[str]:
        found: list[str] = []
        if st.status is not None and st.status != IN_SERVICE:
            why = f" ({st.status_reason})" if st.status_reason else ""
            found.append(f"Inference router {st.name!r} is {st.status}, not InService{why}: requests are refused "
                         "until it is InService.")
        ttls = self._unfinished_ttls(st.name)
        for target in st.targets:
            where = f"routing target {target.name!r} of {st.name!r}"
            for dest in target.destinations:
                if dest.routing_status == UNROUTABLE:
                    found.append(f"Destination {dest.endpoint_name or dest.arn} of {where} is Unroutable: the router "
                                 "sends it nothing (not InService, missing, or of the wrong kind); fix it or remove "
                                 "it from the target.")
            routable = [d for d in target.destinations if d.routing_status == ROUTABLE]
            read = [d.endpoint for d in routable if d.endpoint is not None]
            if target.destinations and not routable:
                found.append(f"No destination of {where} is Routable: its requests wait in the router until one is, "
                             "or until their TTL expires.")
            elif read and len(read) == len(routable) and all(e.current_instances == 0 for e in read) \
                    and not any(e.scales_from_zero for e in read):
                found.append(f"Every destination of {where} has 0 instances and none scales out from zero: requests "
                             "wait until their TTL expires; give one at least 1 instance or a step scaling policy "
                             "on HasBacklogWithoutCapacity.")
            shortest = ttls.get(target.name)
            if target.max_time_in_backlog_s is not None and shortest is not None \
                    and shortest < target.max_time_in_backlog_s:
                found.append(f"Requests of yours to {where} have RequestTTLSeconds {shortest}, shorter than its "
                             f"MaxTimeInBacklogSeconds ({target.max_time_in_backlog_s}): one waiting at a busy "
                             "destination expires before the router can move it; give a longer TTL.")
        return found

    def _unfinished_ttls(self, router: str) -> dict[str, int]:
        """The shortest RequestTTLSeconds of this client's unfinished requests per routing target of ``router``."""
        shortest: dict[str, int] = {}
        for record in self.ctx.records(statuses=UNFINISHED):
            routed = routing_target_of(record.endpoint_name)
            if routed is not None and routed.router == router:
                target = routed.target
                ttl = int(record.request.get("request_ttl_seconds") or DEFAULT_TTL_SECONDS)
                shortest[target] = min(ttl, shortest.get(target, ttl))
        return shortest
