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
class Retired:
    """An endpoint deleted with requests still queued or running (the worker fails them)."""

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

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("body")
        data["status"] = self.status.value
        data["inline_body_size"] = None if self.body is None else len(self.body)
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
            output, failure = result_locations(endpoint.output_path, endpoint.failure_path, inference_id,
                                               args.s3_output_path_extension,
                                               args.filename)
            invocation = Invocation(
                inference_id=inference_id, endpoint_name=endpoint.name, output_location=output,
                failure_location=failure, content_type=args.content_type, accept=args.accept,
                custom_attributes=args.custom_attributes, input_location=args.input_location,
                body=args.body, ttl_seconds=args.request_ttl_seconds or DEFAULT_TTL_SECONDS,
                timeout_seconds=args.invocation_timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
                received_at=now_wall, received_clock=now_clock, seq=len(self._all))
            self._all.append(invocation)
            self._queues[endpoint.name].append(invocation)
            expiry = now_clock + invocation.ttl_seconds
            self.next_expiry[endpoint.name] = min(self.next_expiry.get(endpoint.name, expiry), expiry)
            self.changed.notify_all()
            return invocation

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
            self._running[invocation.endpoint_name].pop(invocation.seq, None)
            self.changed.notify_all()

    def notify(self) -> None:
        with self.lock:
            self.changed.notify_all()

    # -- views -------------------------------------------------------------------------------
    def records(self, endpoint_name: str | None = None) -> list[dict[str, Any]]:
        """Every invocation ever received, in arrival order, as plain dicts."""
        with self.lock:
            return [inv.record() for inv in self._all if endpoint_name is None or inv.endpoint_name == endpoint_name]

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
