"""The local runtime's domain state (moto's ``models.py``): endpoints, per-endpoint FIFO queues,
invocation records, and the domain errors the service answers with.

Plain state behind one lock, no HTTP and no threads of its own: ``responses`` turns HTTP into
:class:`InvokeArgs` and calls :meth:`Backend.submit`; the ``worker`` takes queued
invocations and records their outcome; the endpoint ``lifecycle`` registers what it serves and
retires what was deleted. Times are kept twice: ``*_at`` are wall-clock epoch
seconds (for records and notifications), ``*_clock`` are readings of the stack's emulated clock
(for TTL and timeout accounting, see ``LocalStack(time_scale=...)``).
"""

from __future__ import annotations

import enum
import threading
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from ...contract.locations import result_locations
from ...contract.service import DEFAULT_TIMEOUT_SECONDS, DEFAULT_TTL_SECONDS


class RuntimeStatus(str, enum.Enum):
    """An invocation's state inside the emulated service."""

    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    EXPIRED = "Expired"
    TIMED_OUT = "TimedOut"

    @property
    def stat_key(self) -> str:
        """Its name in :meth:`Backend.endpoint_stats` (``timed_out``...)."""
        return self.name.lower()

    def __str__(self) -> str:
        return self.value


FINISHED = frozenset({RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.EXPIRED, RuntimeStatus.TIMED_OUT})


class ServiceError(Exception):
    """An error the emulated service answers with (``responses`` renders it as AWS does)."""

    status = 400
    code = "ValidationError"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidRequest(ServiceError):
    """A request that breaks a parameter rule (400 ValidationError, like AWS)."""

    def __init__(self, message: str):
        super().__init__(f"1 validation error detected: {message}")


class EndpointNotFound(ServiceError):
    def __init__(self, name: str, account_id: str):
        super().__init__(f"Endpoint {name} of account {account_id} not found.")


class EndpointNotAsync(ServiceError):
    def __init__(self, name: str, account_id: str, config_name: str):
        super().__init__(f"Endpoint {name} of account {account_id} is not configured for asynchronous "
                         f"inference: endpoint config {config_name} has no AsyncInferenceConfig. "
                         "Use InvokeEndpoint for real-time endpoints.")


class UnsupportedOperation(ServiceError):
    def __init__(self, endpoint_name: str):
        super().__init__(f"The local stack serves asynchronous inference only; call InvokeEndpointAsync on "
                         f"endpoint {endpoint_name} instead of InvokeEndpoint.")


class RouterError(ServiceError):
    """An error of InvokeInferenceRouterAsync: its model names the validation error ValidationException
    (InvokeEndpointAsync's is ValidationError)."""

    code = "ValidationException"


class InvalidRouterRequest(RouterError):
    """A router request that breaks a parameter rule (its message as :class:`InvalidRequest` words it)."""


class RouterNotFound(RouterError):
    def __init__(self, name: str, account_id: str):
        super().__init__(f"Inference router {name} of account {account_id} not found.")


class RoutingTargetNotFound(RouterError):
    def __init__(self, target: str, router: str, account_id: str):
        super().__init__(f"Routing target {target} not found in inference router {router} of account {account_id}.")


class RouterNotInService(RouterError):
    def __init__(self, name: str, account_id: str, status: str):
        super().__init__(f"Inference router {name} of account {account_id} is {status}; it takes requests once it "
                         "is InService.")


class TargetNotAsync(RouterError):
    def __init__(self, target: str, router: str):
        super().__init__(f"Routing target {target} of inference router {router} is not configured for asynchronous "
                         "inference: it has no AsyncInferenceConfig. Use InvokeInferenceRouter for real-time "
                         "routing targets.")


class UnsupportedRouterOperation(RouterError):
    def __init__(self, router: str):
        super().__init__(f"The local stack serves asynchronous inference only; call InvokeInferenceRouterAsync on "
                         f"inference router {router} instead of InvokeInferenceRouter.")


@dataclass
class Endpoint:
    """What the runtime needs to know about one endpoint, read back from its endpoint config."""

    name: str
    model: Any  # a hosting.ModelAdapter
    asynchronous: bool = True
    output_path: str | None = None  # AsyncInferenceConfig.OutputConfig.S3OutputPath
    failure_path: str | None = None  # ... S3FailurePath (falls back to S3OutputPath)
    success_topic: str | None = None
    error_topic: str | None = None
    include_response_in: tuple[str, ...] = ()  # NotificationConfig.IncludeInferenceResponseIn
    concurrency: int = 1  # MaxConcurrentInvocationsPerInstance x instance count
    instances: int = 1  # the emulated instance count (the lifecycle's fleet changes it)
    delay: float = 0.0  # extra real seconds per model invocation
    config_name: str = ""
    per_instance: int = 1  # MaxConcurrentInvocationsPerInstance
    healthy: bool = True  # False after its container went away, until /ping answers again

    def scale(self, instances: int) -> None:
        """Run ``instances`` instances, each taking MaxConcurrentInvocationsPerInstance requests at once."""
        self.instances, self.concurrency = instances, self.per_instance * instances


@dataclass
class Route:
    """How a request sent through an inference router travels (SPEC §20): its routing target as
    configured when the router accepted it, and where it has been since."""

    router_name: str
    target_name: str
    destinations: tuple[str, ...]  # the target's destination ARNs, in the order listed
    max_backlog_seconds: int  # ClientConfig.MaxTimeInBacklogSeconds
    success_topic: str | None = None
    error_topic: str | None = None
    tried: list[str] = field(default_factory=list)  # the endpoints it was placed at, in order
    moves: int = 0  # how many times it moved to another destination
    placed_clock: float | None = None  # when it entered its current destination's queue (emulated clock)


@dataclass
class Retired:
    """An endpoint deleted with requests still queued or running (the worker fails them; requests an
    inference router placed there and that had not started go back to the router instead)."""

    endpoint: Endpoint
    queued: list[Invocation]
    running: list[Invocation]


@dataclass(frozen=True)
class InvokeArgs:
    """One validated InvokeEndpointAsync request."""

    endpoint_name: str
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    input_location: str | None = None
    body: bytes | None = None
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    s3_output_path_extension: str | None = None
    filename: str | None = None


@dataclass
class Invocation:
    inference_id: str
    endpoint_name: str
    output_location: str
    failure_location: str
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    input_location: str | None
    body: bytes | None = field(default=None, repr=False)
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    status: RuntimeStatus = RuntimeStatus.QUEUED
    received_at: float = 0.0
    received_clock: float = 0.0
    started_at: float | None = None
    started_clock: float | None = None
    finished_at: float | None = None
    failure_reason: str | None = None
    output_content_type: str | None = None
    output_size: int | None = None
    late_result_discarded: bool = False
    seq: int = 0  # this invocation among every request the runtime received (ids may repeat)
    route: Route | None = None  # sent through an inference router: where it has been

    @classmethod
    def of(cls, args: InvokeArgs, inference_id: str, locations: tuple[str, str], *, now_clock: float,
           now_wall: float, route: Route | None = None) -> Invocation:
        """A new invocation of the request ``args`` (``endpoint_name`` "" while a router holds it)."""
        output, failure = locations
        return cls(inference_id=inference_id, endpoint_name=args.endpoint_name, output_location=output,
                   failure_location=failure, content_type=args.content_type, accept=args.accept,
                   custom_attributes=args.custom_attributes, input_location=args.input_location, body=args.body,
                   ttl_seconds=args.request_ttl_seconds or DEFAULT_TTL_SECONDS,
                   timeout_seconds=args.invocation_timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
                   received_at=now_wall, received_clock=now_clock, route=route)

    def record(self) -> dict[str, Any]:
        """The invocation as plain data. A routed request's ``endpoint_name`` is the destination it ran
        at (or waits at; "" while the router holds it); ``destinations_tried`` lists where it was placed
        and ``moves`` how many times it moved on."""
        data = asdict(self)
        data.pop("body")
        data.pop("route")
        data["status"] = self.status.value
        data["inline_body_size"] = None if self.body is None else len(self.body)
        route = self.route
        data.update(inference_router_name=route.router_name if route else None,
                    routing_target_name=route.target_name if route else None,
                    destinations_tried=list(route.tried) if route else [], moves=route.moves if route else 0)
        return data


class Backend:
    """Endpoint registry, queues and records. Every method is thread-safe."""

    def __init__(self, account_id: str = "123456789012", region: str = "us-east-1"):
        self.account_id, self.region = account_id, region
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified on enqueue / completion
        self._endpoints: dict[str, Endpoint] = {}
        self._queues: dict[str, deque[Invocation]] = {}
        self._running: dict[str, dict[int, Invocation]] = {}  # endpoint -> seq -> running invocation
        self._all: list[Invocation] = []  # every request received, in arrival order
        self.max_in_flight: dict[str, int] = {}
        # Per endpoint, an emulated-clock reading no queued request expires before: the worker scans
        # the queue for expired requests only once it is reached (the queue can hold thousands).
        self.next_expiry: dict[str, float] = {}
        self._retired: list[Retired] = []
        self._returned: list[Invocation] = []  # routed, queued at an endpoint that was deleted: back to the router
        self._given_up: list[tuple[Invocation, RuntimeStatus, str]] = []  # the router's: the worker fails them

    # -- endpoints ---------------------------------------------------------------------------
    def register(self, endpoint: Endpoint) -> None:
        with self.lock:
            self._endpoints[endpoint.name] = endpoint
            self._queues.setdefault(endpoint.name, deque())
            self._running.setdefault(endpoint.name, {})
            self.max_in_flight.setdefault(endpoint.name, 0)

    def retire(self, name: str) -> None:
        """Stop serving endpoint ``name`` (deleted): new requests get EndpointNotFound, and the
        requests still queued or running are handed to the worker to fail (:meth:`take_retired`)."""
        with self.lock:
            endpoint = self._endpoints.pop(name, None)
            if endpoint is None:
                return
            queued = list(self._queues.pop(name, ()))
            running = list(self._running.pop(name, {}).values())
            self._queues[name], self._running[name] = deque(), {}
            self.next_expiry.pop(name, None)
            for inv in queued:
                if inv.route is not None:
                    inv.endpoint_name = ""  # at no endpoint until the router places it again
                    self._returned.append(inv)
            queued = [inv for inv in queued if inv.route is None]
            if queued or running:
                self._retired.append(Retired(endpoint, queued, running))
            self.changed.notify_all()

    def take_retired(self) -> list[Retired]:
        with self.lock:
            retired, self._retired = self._retired, []
            return retired

    def endpoint(self, name: str) -> Endpoint | None:
        with self.lock:
            return self._endpoints.get(name)

    def endpoints(self) -> list[Endpoint]:
        with self.lock:
            return list(self._endpoints.values())

    # -- requests ----------------------------------------------------------------------------
    def submit(self, args: InvokeArgs, *, now_clock: float, now_wall: float) -> Invocation:
        """Queue a request as a new invocation.

        A repeated InferenceId is another invocation, as on AWS: SageMaker does not deduplicate by id (a
        second request with the same id runs again and writes the same output location). Idempotent
        submission is the client's job (its journal), never the runtime's.
        """
        with self.lock:
            endpoint = self._endpoints.get(args.endpoint_name)
            if endpoint is None:
                raise EndpointNotFound(args.endpoint_name, self.account_id)
            if not endpoint.asynchronous:
                raise EndpointNotAsync(args.endpoint_name, self.account_id, endpoint.config_name)
            inference_id = args.inference_id or str(uuid.uuid4())
            locations = result_locations(endpoint.output_path, endpoint.failure_path, inference_id,
                                         args.s3_output_path_extension, args.filename)
            invocation = self.accept(Invocation.of(args, inference_id, locations, now_clock=now_clock,
                                                   now_wall=now_wall))
            self.place(invocation, endpoint.name)
            return invocation

    def accept(self, invocation: Invocation) -> Invocation:
        """Record a request received (numbered in arrival order), not yet in any endpoint's queue."""
        with self.lock:
            invocation.seq = len(self._all)
            self._all.append(invocation)
            return invocation

    def place(self, invocation: Invocation, endpoint_name: str) -> bool:
        """Put an accepted request at the end of ``endpoint_name``'s queue; False when no such endpoint
        is served. Its RequestTTLSeconds still counts from when it was received."""
        with self.lock:
            if endpoint_name not in self._endpoints:
                return False
            invocation.endpoint_name = endpoint_name
            self._queues[endpoint_name].append(invocation)
            expiry = invocation.received_clock + invocation.ttl_seconds
            self.next_expiry[endpoint_name] = min(self.next_expiry.get(endpoint_name, expiry), expiry)
            self.changed.notify_all()
            return True

    def take_back(self, invocation: Invocation) -> bool:
        """Take a request out of its endpoint's queue if it is still waiting there (not started,
        expired or failed); True when it was."""
        with self.lock:
            if invocation.status is not RuntimeStatus.QUEUED:
                return False
            queue = self._queues.get(invocation.endpoint_name)
            for index, queued in enumerate(queue or ()):
                if queued is invocation:
                    del queue[index]  # type: ignore[union-attr]
                    invocation.endpoint_name = ""  # at no endpoint until placed again
                    return True
            return False

    def load(self, endpoint_name: str) -> tuple[int, int, bool] | None:
        """(concurrency now, requests queued or running, healthy) of a served endpoint; None if not served."""
        with self.lock:
            endpoint = self._endpoints.get(endpoint_name)
            if endpoint is None:
                return None
            waiting = len(self._queues[endpoint_name]) + len(self._running[endpoint_name])
            return endpoint.concurrency, waiting, endpoint.healthy

    def take_returned(self) -> list[Invocation]:
        """Routed requests that were waiting at an endpoint since deleted (the router places them again)."""
        with self.lock:
            returned, self._returned = self._returned, []
            return returned

    def give_up(self, invocation: Invocation, status: RuntimeStatus, reason: str) -> None:
        """A request no destination will run (the router's decision): the worker writes its failure
        object and sends the error notification."""
        with self.lock:
            self._given_up.append((invocation, status, reason))
            self.changed.notify_all()

    def take_given_up(self) -> list[tuple[Invocation, RuntimeStatus, str]]:
        with self.lock:
            given_up, self._given_up = self._given_up, []
            return given_up

    def queued(self, endpoint_name: str) -> list[Invocation]:
        with self.lock:
            return list(self._queues[endpoint_name])

    def running(self, endpoint_name: str) -> list[Invocation]:
        with self.lock:
            return list(self._running[endpoint_name].values())

    def expire_due(self, endpoint_name: str, now_clock: float) -> list[Invocation]:
        """Remove and return the queued requests whose RequestTTLSeconds has passed at ``now_clock``."""
        with self.lock:
            if now_clock < self.next_expiry.get(endpoint_name, float("inf")):
                return []
            queue = self._queues[endpoint_name]
            due = [inv for inv in queue if now_clock - inv.received_clock >= inv.ttl_seconds]
            for inv in due:
                queue.remove(inv)
            self.next_expiry[endpoint_name] = min((inv.received_clock + inv.ttl_seconds for inv in queue),
                                                  default=float("inf"))
            return due

    def pop_next(self, endpoint_name: str) -> Invocation | None:
        with self.lock:
            queue = self._queues[endpoint_name]
            return queue.popleft() if queue else None

    def mark_running(self, invocation: Invocation, *, now_clock: float, now_wall: float) -> None:
        with self.lock:
            invocation.status, invocation.started_clock, invocation.started_at = (RuntimeStatus.RUNNING, now_clock,
                                                                                 now_wall)
            running = self._running[invocation.endpoint_name]
            running[invocation.seq] = invocation
            name = invocation.endpoint_name
            self.max_in_flight[name] = max(self.max_in_flight[name], len(running))

    def mark_finished(self, invocation: Invocation, status: RuntimeStatus, *, now_wall: float,
                      reason: str | None = None) -> None:
        with self.lock:
            invocation.status, invocation.finished_at, invocation.failure_reason = status, now_wall, reason
            invocation.body = None  # the inline payload is not needed any more
            self._running.get(invocation.endpoint_name, {}).pop(invocation.seq, None)
            self.changed.notify_all()

    def notify(self) -> None:
        with self.lock:
            self.changed.notify_all()

    # -- views -------------------------------------------------------------------------------
    def records(self, endpoint_name: str | None = None, router_name: str | None = None) -> list[dict[str, Any]]:
        """Every invocation ever received (of one endpoint, of the requests sent through one inference
        router), in arrival order, as plain dicts."""
        with self.lock:
            return [inv.record() for inv in self._all if (endpoint_name is None or inv.endpoint_name == endpoint_name)
                    and (router_name is None or (inv.route is not None and inv.route.router_name == router_name))]

    def endpoint_stats(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            stats: dict[str, dict[str, Any]] = {}
            for name in self._endpoints:
                counts = dict.fromkeys(RuntimeStatus, 0)
                received = 0
                for inv in self._all:
                    if inv.endpoint_name == name:
                        counts[inv.status] += 1
                        received += 1
                stats[name] = {"max_in_flight": self.max_in_flight[name],
                               "in_flight": len(self._running[name]),
                               "concurrency": self._endpoints[name].concurrency,
                               "requests_received": received,
                               **{k.stat_key: v for k, v in counts.items()}}
            return stats
