"""Inference routers at run time (SPEC §20): InvokeInferenceRouterAsync places each request at one
of its routing target's destinations, moves it when it waits there too long, and gives up on it
when no destination takes it.

* **Accepting**: the router must exist and be InService (or Updating: the previous routing targets
  serve until the update is in effect), the routing target must exist and be asynchronous. The
  request's OutputLocation and FailureLocation come from the *target's* OutputConfig, once: they
  never change when the request moves. Its notifications go to the target's topics.
* **Placing** — LocalRegionFirst on the one emulated Region (:func:`choose`): among the
  destinations not tried yet that are ``Routable`` (an InService async endpoint of this account
  and Region whose container answers), those with a free slot (queued + running below
  instances × MaxConcurrentInvocationsPerInstance) come first, the least loaded (relative to its
  capacity) of them; when none has one, every routable one is used, the least loaded first — so a
  destination at 0 instances is used after the others, never excluded (it may scale out from zero).
  The request joins the end of that endpoint's queue, as one sent to it directly.
* **Moving**: a request that did not start at its destination within the target's
  ``MaxTimeInBacklogSeconds`` (emulated clock, from when it was placed there) is taken out of that
  queue and placed at another destination not tried yet; one whose destination is deleted while it
  waits is placed again at once. Once the model starts it, it stays.
* **Giving up**: when every destination was tried, the router gives up on it (``RoutingFailed``);
  when none of the destinations left can take it now (not InService, deleted, in another account
  or Region) the router holds it until one can, or until its RequestTTLSeconds (counted from when
  the router accepted it) has passed (``RequestExpired``, as a request expiring in an endpoint's
  queue). The worker writes the failure object at the target's failure path and notifies the
  target's error topic.

Every routed invocation is in the runtime's records like any other, with ``inference_router_name``,
``routing_target_name``, ``destinations_tried`` and ``moves`` (``endpoint_name``: where it ran).
:meth:`Routing.step` does one pass at an injected clock reading (tests drive it); the stack's
``sm-async-nb-router`` thread calls it every 50 ms.
"""

from __future__ import annotations

import heapq
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ...contract.locations import result_locations
from ...contract.names import ROUTABLE, ROUTING_UNKNOWN, UNROUTABLE
from .lifecycle import SERVING
from .models import (
    Backend,
    Invocation,
    InvokeArgs,
    Route,
    RouterNotFound,
    RouterNotInService,
    RoutingTargetNotFound,
    RuntimeStatus,
    TargetNotAsync,
)
from .routers import Routers

log = logging.getLogger(__name__)

STEP_INTERVAL = 0.05  # real seconds between passes of the router thread
_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
                  r"(?P<kind>endpoint|inference-component)/(?P<name>.+)")


@dataclass(frozen=True)
class DestinationView:
    """A destination as the router sees it at one moment."""

    arn: str
    endpoint: str | None  # the endpoint's name, when the ARN names one of this account and Region
    status: str  # its RoutingStatus: Routable, Unroutable or Unknown
    capacity: int = 0  # requests it runs at once now (instances x MaxConcurrentInvocationsPerInstance)
    load: int = 0  # requests queued or running there


def choose(views: Sequence[DestinationView], tried: Collection[str]) -> DestinationView | None:
    """Where LocalRegionFirst sends a request on the one emulated Region: the least loaded (relative to
    its capacity) routable destination not in ``tried`` with a free slot, else the least loaded
    routable one not in ``tried`` (a full one, or one at 0 instances); None when there is none. Ties go
    to the destination listed first."""
    candidates = [v for v in views if v.status == ROUTABLE and v.endpoint not in tried]
    if not candidates:
        return None
    with_room = [v for v in candidates if v.load < v.capacity]
    return min(with_room or candidates, key=lambda v: v.load / max(v.capacity, 1))


class EndpointDirectory(Protocol):
    """What the router reads of an endpoint's lifecycle (``lifecycle.Lifecycle``)."""

    def destination(self, name: str) -> tuple[str, bool, str] | None: ...


class LocalDestinations:
    """Destinations as this account and Region sees them: the endpoint's lifecycle (status, mode) and
    the runtime's queues (capacity, load, health). An ARN of another account or Region cannot be
    checked (``Unknown``); an inference component is not emulated (``Unroutable``)."""

    def __init__(self, endpoints: EndpointDirectory, backend: Backend, account_id: str, region: str):
        self.endpoints, self.backend, self.account_id, self.region = endpoints, backend, account_id, region

    def _local(self, arn: str) -> tuple[str, str] | None:
        """(kind, name) of an ARN of this account and Region."""
        found = _ARN.fullmatch(arn)
        if found is None or (found["account"], found["region"]) != (self.account_id, self.region):
            return None
        return found["kind"], found["name"]

    def mode(self, arn: str) -> tuple[str, bool, str] | None:
        """(kind, asynchronous, endpoint config name) of a destination that can be checked."""
        found = _ARN.fullmatch(arn)
        if found is not None and found["kind"] != "endpoint":
            return found["kind"], False, ""  # not an endpoint, wherever it is
        local = self._local(arn)
        described = self.endpoints.destination(local[1]) if local else None
        return None if described is None else ("endpoint", described[1], described[2])

    def view(self, arn: str, asynchronous: bool) -> DestinationView:
        local = self._local(arn)
        if local is None:
            return DestinationView(arn, None, ROUTING_UNKNOWN)
        kind, name = local
        if kind != "endpoint":
            return DestinationView(arn, None, UNROUTABLE)
        described = self.endpoints.destination(name)
        load = self.backend.load(name)
        if described is None or described[0] not in SERVING or described[1] != asynchronous or load is None \
                or not load[2]:
            return DestinationView(arn, name, UNROUTABLE)
        return DestinationView(arn, name, ROUTABLE, capacity=load[0], load=load[1])

    def routing_status(self, arn: str, asynchronous: bool) -> str:
        return self.view(arn, asynchronous).status


class Routing:
    """Places, moves and gives up on the requests sent through inference routers (module docstring)."""

    def __init__(self, backend: Backend, routers: Routers, destinations: LocalDestinations,
                 clock: Callable[[], float], wall: Callable[[], float] = time.time):
        self.backend, self.routers, self.destinations = backend, routers, destinations
        self.clock, self.wall = clock, wall
        self._lock = threading.Lock()
        self._due: list[tuple[float, int, int, Invocation]] = []  # (move deadline, seq, placement number, request)
        self._held: dict[int, Invocation] = {}  # by seq: requests no destination can take now
        self._routed: list[Invocation] = []

    # -- InvokeInferenceRouterAsync ------------------------------------------------------------------
    def submit(self, router_name: str, target_name: str, args: InvokeArgs, *, now_clock: float,
               now_wall: float) -> Invocation:
        """Accept one request and place it.

        Raises:
            ServiceError: no such router or target (AWS's wording), the router is not InService yet, or
                the target is real-time.
        """
        account = self.backend.account_id
        router = self.routers.find(router_name)
        if router is None:
            raise RouterNotFound(router_name, account)
        if router.status not in SERVING:
            raise RouterNotInService(router_name, account, router.status)
        target = router.target(target_name)
        if target is None:
            raise RoutingTargetNotFound(target_name, router_name, account)
        if not target.asynchronous:
            raise TargetNotAsync(target_name, router_name)
        inference_id = args.inference_id or str(uuid.uuid4())
        locations = result_locations(target.output_path, target.failure_path, inference_id,
                                     args.s3_output_path_extension, args.filename)
        route = Route(router_name=router_name, target_name=target_name, destinations=target.destinations,
                      max_backlog_seconds=target.max_backlog_seconds, success_topic=target.success_topic,
                      error_topic=target.error_topic)
        invocation = self.backend.accept(Invocation.of(args, inference_id, locations, now_clock=now_clock,
                                                       now_wall=now_wall, route=route))
        with self._lock:
            self._routed.append(invocation)
            self._place(invocation, now_clock)
        return invocation

    # -- one pass --------------------------------------------------------------------------------------
    def step(self, now: float | None = None) -> int:
        """Move what waited MaxTimeInBacklogSeconds, place again what a deleted endpoint had, place or
        give up on what the router holds, at clock reading ``now``; returns how many requests it handled."""
        now = self.clock() if now is None else now
        handled = 0
        with self._lock:
            for invocation in self.backend.take_returned():
                self._place(invocation, now)
                handled += 1
            while self._due and self._due[0][0] <= now:
                _, _, placement, invocation = heapq.heappop(self._due)
                route = invocation.route
                assert route is not None
                if placement == len(route.tried) and self.backend.take_back(invocation):
                    log.info("request %s waited %d s at %s without starting; moving it", invocation.inference_id,
                             route.max_backlog_seconds, route.tried[-1])
                    self._place(invocation, now)
                    handled += 1
            handled += self._step_held(now)
        return handled

    def _step_held(self, now: float) -> int:
        handled = 0
        statuses: dict[str, str] = {}  # checked once per pass: a held request is placed only when one is Routable
        for invocation in list(self._held.values()):
            route = invocation.route
            assert route is not None
            if now - invocation.received_clock >= invocation.ttl_seconds:
                del self._held[invocation.seq]
                self.backend.give_up(invocation, RuntimeStatus.EXPIRED, (
                    f"RequestExpired: The request expired: no destination of routing target {route.target_name} of "
                    f"inference router {route.router_name} took it within RequestTTLSeconds "
                    f"({invocation.ttl_seconds} s), so it was never processed."))
                handled += 1
                continue
            for arn in route.destinations:
                if arn not in statuses:
                    statuses[arn] = self.destinations.view(arn, True).status
            if any(statuses[arn] == ROUTABLE for arn in route.destinations):
                self._place(invocation, now)
                handled += invocation.seq not in self._held
        return handled

    def _place(self, invocation: Invocation, now: float) -> None:
        """Place ``invocation`` at its best destination not tried yet; else hold it while a destination
        not tried yet is left, else give up on it (the caller holds the lock)."""
        route = invocation.route
        assert route is not None
        while True:
            views = [self.destinations.view(arn, True) for arn in route.destinations]
            choice = choose(views, route.tried)
            if choice is None:
                break
            assert choice.endpoint is not None
            if self.backend.place(invocation, choice.endpoint):
                route.moves += 1 if route.tried else 0
                route.tried.append(choice.endpoint)
                route.placed_clock = now
                heapq.heappush(self._due, (now + route.max_backlog_seconds, invocation.seq, len(route.tried),
                                           invocation))
                self._held.pop(invocation.seq, None)
                return
            # deleted between the look and the placement: look again (it is Unroutable now)
        if any(v.endpoint is None or v.endpoint not in route.tried for v in views):
            self._held[invocation.seq] = invocation
            return
        self._held.pop(invocation.seq, None)
        log.info("request %s: every destination of routing target %s was tried", invocation.inference_id,
                 route.target_name)
        self.backend.give_up(invocation, RuntimeStatus.FAILED, (
            f"RoutingFailed: No destination of routing target {route.target_name} of inference router "
            f"{route.router_name} started the request: it was tried at {', '.join(route.tried)}, waiting up to "
            f"MaxTimeInBacklogSeconds ({route.max_backlog_seconds} s) at each."))

    # -- views -----------------------------------------------------------------------------------------
    def held(self) -> int:
        """Requests the routers hold (no destination can take them now)."""
        with self._lock:
            return len(self._held)

    def stats(self) -> dict[str, Any]:
        """Per router and routing target: requests received, by status, how many moved (and how many
        moves in all), and how many ran at each destination."""
        with self._lock:
            routed = list(self._routed)
        found: dict[str, Any] = {}
        for invocation in routed:
            route = invocation.route
            assert route is not None
            entry = found.setdefault(route.router_name, {}).setdefault(route.target_name, {
                "received": 0, "moved": 0, "moves": 0, "ran_at": {}, **{s.stat_key: 0 for s in RuntimeStatus}})
            entry["received"] += 1
            entry[invocation.status.stat_key] += 1
            if route.moves:
                entry["moved"] += 1
                entry["moves"] += route.moves
            if invocation.started_at is not None:
                entry["ran_at"][invocation.endpoint_name] = entry["ran_at"].get(invocation.endpoint_name, 0) + 1
        return found

    def run(self, stop: threading.Event, interval: float = STEP_INTERVAL) -> None:
        """Thread body: :meth:`step` until ``stop`` is set."""
        while not stop.wait(interval):
            try:
                self.step()
            except Exception:
                log.exception("inference router step failed")
