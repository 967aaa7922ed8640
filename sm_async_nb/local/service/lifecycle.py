"""The control plane's endpoints as the runtime serves them (SPEC §17), whoever created them.

moto keeps the records (names, ARNs, tags, the endpoint configs and models); this module keeps
what moto does not emulate — each endpoint's lifecycle and fleet — and registers what it serves
with the runtime's :class:`~sm_async_nb.local.service.models.Backend`:

* CreateEndpoint → ``Creating``: the endpoint config and model are read back, the model is
  resolved (``resolution.py``) and loaded — a container must answer ``GET /ping`` with 200 — and
  after ``create_seconds`` (emulated) it is ``InService`` and served; a model that cannot be
  served leaves it ``Failed`` with a FailureReason that says what to do.
* UpdateEndpoint → ``Updating``: the old config keeps serving until the new one is loaded, then
  new requests go to the new one (running ones finish on the old); a new config that cannot be
  served is rolled back (``InService`` on the old config, the reason in FailureReason).
* DeleteEndpoint → gone: InvokeEndpointAsync answers EndpointNotFound, and what was queued or
  running ends in failure objects (the worker writes them, with the error notification).
* The fleet: each variant's DesiredInstanceCount (UpdateEndpointWeightsAndCapacities, or the
  scaler acting for Application Auto Scaling); instances are added only once the model answers
  ``/ping``, and a container that went away takes no request until it answers again.

``sagemaker`` is a boto3 client of the stack's own moto server (its answers pass the same routes
every client's do). With ``create_seconds == 0`` CreateEndpoint/UpdateEndpoint wait for the
model to load (up to :data:`SYNC_BUDGET_SECONDS`), so the first DescribeEndpoint after them — a
boto3 waiter's — already reads ``InService`` or ``Failed``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...contract.names import DEFAULT_VARIANT
from .models import Backend, Endpoint
from .resolution import ModelSource, Resolved, Resolver, Unresolvable

log = logging.getLogger(__name__)

CREATING, UPDATING, IN_SERVICE, FAILED = "Creating", "Updating", "InService", "Failed"
SERVING = frozenset({IN_SERVICE, UPDATING})  # the statuses an endpoint takes requests in
DEFAULT_STARTUP_SECONDS = 10.0  # a container's time to answer /ping, unless the variant's
# ContainerStartupHealthCheckTimeoutInSeconds says otherwise (emulated seconds)
SYNC_BUDGET_SECONDS = 15.0
HEALTH_INTERVAL = 0.5


class ControlPlaneError(Exception):
    """A request the emulated control plane refuses (rendered as AWS's ValidationException)."""

    code = "ValidationException"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Variant:
    name: str
    desired: int
    current: int


@dataclass
class EndpointState:
    """One endpoint's lifecycle (what DescribeEndpoint reads beyond moto's record)."""

    name: str
    arn: str
    config_name: str
    status: str
    async_config: dict[str, Any] | None
    variants: list[Variant]
    last_modified: float
    failure_reason: str | None = None
    generation: int = 0  # bumped by every operation: an older operation's thread then gives up
    serving: Resolved | None = None  # the model it serves
    endpoint: Endpoint | None = None  # the runtime's view, once served
    next_health_check: float = 0.0
    threads: list[threading.Thread] = field(default_factory=list)


@dataclass(frozen=True)
class Fleet:
    """What the scaler reads of one served async endpoint's (first) variant."""

    name: str
    variant: str
    desired: int
    current: int


class Lifecycle:
    """See the module docstring. Thread-safe; callbacks (``on_change``) run outside its lock."""

    def __init__(self, backend: Backend, sagemaker: Any, resolver: Resolver, clock: Callable[[], float], *,
                 create_seconds: float = 0.0, account_id: str = "123456789012", region: str = "us-east-1",
                 wall: Callable[[], float] = time.time):
        self.backend, self.sagemaker, self.resolver, self.clock = backend, sagemaker, resolver, clock
        self.create_seconds, self.account_id, self.region, self.wall = create_seconds, account_id, region, wall
        self.on_change: Callable[[list[str]], None] = lambda names: None
        self._states: dict[str, EndpointState] = {}
        self._lock = threading.RLock()
        self._halt = threading.Event()

    # -- what the routes ask -----------------------------------------------------------------------
    def arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:endpoint/{name}"  # as moto writes it

    def knows(self, name: str) -> bool:
        with self._lock:
            return name in self._states

    def names(self) -> list[str]:
        with self._lock:
            return list(self._states)

    def destination(self, name: str) -> tuple[str, bool, str] | None:
        """(status, asynchronous, endpoint config name) of endpoint ``name`` — what an inference router
        checks of a destination; None when there is no such endpoint."""
        with self._lock:
            state = self._states.get(name)
            return None if state is None else (state.status, bool(state.async_config), state.config_name)

    def overlay(self, name: str) -> dict[str, Any] | None:
        """What DescribeEndpoint says of ``name`` beyond moto's record (None: not one of ours)."""
        with self._lock:
            state = self._states.get(name)
            if state is None:
                return None
            found: dict[str, Any] = {"EndpointStatus": state.status, "EndpointConfigName": state.config_name,
                                     "LastModifiedTime": state.last_modified,
                                     "ProductionVariants": {v.name: {"CurrentInstanceCount": v.current,
                                                                     "DesiredInstanceCount": v.desired}
                                                            for v in state.variants}}
            if state.failure_reason:
                found["FailureReason"] = state.failure_reason
            if state.async_config:
                found["AsyncInferenceConfig"] = state.async_config
            return found

    # -- operations (called once moto accepted the request where it has a say) ---------------------
    def create(self, name: str, config_name: str) -> None:
        """Start serving a new endpoint (moto has just created its record).

        Raises:
            ControlPlaneError: its endpoint config cannot be read.
        """
        config = self._describe_config(config_name)
        state = EndpointState(name=name, arn=self.arn(name), config_name=config_name, status=CREATING,
                              async_config=config.get("AsyncInferenceConfig"), variants=_variants(config),
                              last_modified=self.wall())
        with self._lock:
            if name in self._states:
                raise ControlPlaneError(f'Cannot create already existing endpoint "{state.arn}".')
            self._states[name] = state
        self._run(state, state.generation, config, self.clock())
        self._changed()

    def update(self, name: str, config_name: str) -> str:
        """UpdateEndpoint: serve ``config_name`` once it is loaded; returns the endpoint's ARN.

        Raises:
            ControlPlaneError: no such endpoint, it is not InService, or no such endpoint config
                (the endpoint is left as it was).
        """
        with self._lock:
            state = self._states.get(name)
            if state is None:
                raise ControlPlaneError(f'Could not find endpoint "{self.arn(name)}".')
            if state.status != IN_SERVICE:
                raise ControlPlaneError(f'Cannot update in-progress endpoint "{state.arn}" '
                                        f"(it is {state.status}).")
        config = self._describe_config(config_name)
        with self._lock:
            if self._states.get(name) is not state or state.status != IN_SERVICE:
                raise ControlPlaneError(f'Cannot update in-progress endpoint "{state.arn}".')
            state.status, state.last_modified = UPDATING, self.wall()
            state.generation += 1
            generation = state.generation
        self._run(state, generation, config, self.clock())
        self._changed()
        return state.arn

    def delete(self, name: str) -> None:
        """DeleteEndpoint (moto has removed its record): stop serving it; what it still had queued or
        running fails."""
        with self._lock:
            state = self._states.pop(name, None)
            if state is not None:
                state.generation += 1
        self.backend.retire(name)
        if state is not None and state.serving is not None:
            state.serving.discard()
        self._changed()

    def set_desired(self, name: str, variant: str, count: int) -> None:
        """A variant's DesiredInstanceCount (UpdateEndpointWeightsAndCapacities, or the scaler)."""
        with self._lock:
            state = self._states.get(name)
            found = [v for v in state.variants if v.name == variant] if state is not None else []
            if state is None or not found:
                return
            if found[0].desired != count:
                log.info("endpoint %s/%s: desired instances %d -> %d", name, variant, found[0].desired, count)
            found[0].desired = count
        self._converge(state)

    def fleets(self) -> list[Fleet]:
        """Every served async endpoint's first variant (what the scaler scales)."""
        with self._lock:
            return [Fleet(s.name, s.variants[0].name, s.variants[0].desired, s.variants[0].current)
                    for s in self._states.values()
                    if s.status in SERVING and s.endpoint is not None and s.endpoint.asynchronous and s.variants]

    # -- serving a config --------------------------------------------------------------------------
    def _describe_config(self, config_name: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return dict(self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name))
        except ClientError as exc:
            raise ControlPlaneError(exc.response.get("Error", {}).get("Message") or str(exc)) from None

    def _run(self, state: EndpointState, generation: int, config: dict[str, Any], started: float) -> None:
        thread = threading.Thread(target=self._serve, args=(state, generation, config, started),
                                  name=f"sm-async-nb-endpoint-{state.name[:20]}", daemon=True)
        state.threads = [t for t in state.threads if t.is_alive()] + [thread]
        thread.start()
        if self.create_seconds == 0:
            thread.join(SYNC_BUDGET_SECONDS)

    def _serve(self, state: EndpointState, generation: int, config: dict[str, Any], started: float) -> None:
        """Thread body: load ``config``'s model, wait out ``create_seconds``, then serve it (if this is
        still the endpoint's latest operation)."""
        updating = state.status == UPDATING
        try:
            resolved, endpoint = self._prepare(state.name, config)
        except Unresolvable as exc:
            self._refuse(state, generation, str(exc), config["EndpointConfigName"], updating)
            return
        except Exception as exc:  # a bug, not the user's model: still a readable reason
            log.exception("endpoint %s could not be served", state.name)
            self._refuse(state, generation, f"InternalFailure: {type(exc).__name__}: {exc}",
                         config["EndpointConfigName"], updating)
            return
        while self.clock() < started + self.create_seconds and not self._halt.is_set() and self._current(
                state, generation):
            self._halt.wait(0.02)
        with self._lock:
            if not self._current(state, generation) or self._halt.is_set():
                current = False
            else:
                current, old = True, state.serving
                self.backend.register(endpoint)
                state.serving, state.endpoint = resolved, endpoint
                state.config_name, state.async_config = config["EndpointConfigName"], config.get("AsyncInferenceConfig")
                state.variants = [Variant(v.name, v.desired, v.current) for v in _variants(config)]
                state.status, state.failure_reason, state.last_modified = IN_SERVICE, None, self.wall()
        if not current:
            if resolved is not None:
                resolved.discard()
            return
        if old is not None and old is not resolved:
            old.discard()
        log.info("endpoint %s is InService (config %s)", state.name, state.config_name)
        self._changed()

    def _current(self, state: EndpointState, generation: int) -> bool:
        with self._lock:
            return self._states.get(state.name) is state and state.generation == generation

    def _refuse(self, state: EndpointState, generation: int, reason: str, config_name: str, updating: bool) -> None:
        with self._lock:
            if not self._current(state, generation):
                return
            if updating:  # rolled back: the old config keeps serving
                state.status = IN_SERVICE
                state.failure_reason = f"UpdateEndpoint to {config_name} was rolled back: {reason}"[:1024]
            else:
                state.status, state.failure_reason = FAILED, reason
            state.last_modified = self.wall()
        log.warning("endpoint %s: %s", state.name, state.failure_reason)
        self._changed()

    def _prepare(self, name: str, config: dict[str, Any]) -> tuple[Resolved | None, Endpoint]:
        """The model of ``config`` resolved and loaded, and the runtime's view of the endpoint.

        Raises:
            Unresolvable: what is wrong and what to do.
        """
        from botocore.exceptions import ClientError

        first = (config.get("ProductionVariants") or [{}])[0]
        model_name = first.get("ModelName", "?")
        try:
            source = ModelSource.from_description(self.sagemaker.describe_model(ModelName=model_name))
        except ClientError as exc:
            raise Unresolvable(f"Endpoint config {config['EndpointConfigName']} names model {model_name}, which "
                               f"cannot be read ({exc.response.get('Error', {}).get('Message', exc)}); create the "
                               "model (CreateModel) and the endpoint again") from None
        async_config = config.get("AsyncInferenceConfig")
        count = _variants(config)[0].current
        if not async_config:
            endpoint = Endpoint(name=name, model=None, asynchronous=False, config_name=config["EndpointConfigName"])
            endpoint.scale(count)
            return None, endpoint
        output = async_config.get("OutputConfig") or {}
        if not output.get("S3OutputPath"):
            raise Unresolvable(f"Endpoint config {config['EndpointConfigName']}: AsyncInferenceConfig.OutputConfig "
                               "has no S3OutputPath; results need one")
        startup = float(first.get("ContainerStartupHealthCheckTimeoutInSeconds") or DEFAULT_STARTUP_SECONDS)
        resolved = self.resolver.resolve(source, startup)
        try:
            resolved.adapter.load()
        except Unresolvable:
            resolved.discard()
            raise
        except Exception as exc:
            resolved.discard()
            raise Unresolvable(_load_failure(source, exc)) from None
        notify = output.get("NotificationConfig") or {}
        per_instance = (async_config.get("ClientConfig") or {}).get("MaxConcurrentInvocationsPerInstance") or 1
        endpoint = Endpoint(name=name, model=resolved.adapter, asynchronous=True,
                            output_path=output.get("S3OutputPath"), failure_path=output.get("S3FailurePath"),
                            success_topic=notify.get("SuccessTopic"), error_topic=notify.get("ErrorTopic"),
                            include_response_in=tuple(notify.get("IncludeInferenceResponseIn") or ()),
                            delay=source.delay, config_name=config["EndpointConfigName"], per_instance=per_instance)
        endpoint.scale(count)
        return resolved, endpoint

    # -- the fleet -----------------------------------------------------------------------------------
    def _converge(self, state: EndpointState) -> None:
        """Move the first variant's current count to its desired one; an instance is added only once
        the model answers /ping (as SageMaker's health check)."""
        with self._lock:
            endpoint, variant = state.endpoint, state.variants[0] if state.variants else None
            if endpoint is None or variant is None or variant.current == variant.desired:
                return
            growing = variant.desired > variant.current
        if growing and endpoint.model is not None and not _ping(endpoint.model):
            return  # tried again by step()
        with self._lock:
            if state.endpoint is not endpoint:
                return
            variant.current = variant.desired
            endpoint.scale(variant.current)
        self.backend.notify()

    def step(self, now: float | None = None) -> None:
        """Re-ping containers that went away, and add instances still waiting for /ping."""
        now = self.clock() if now is None else now
        with self._lock:
            states = [s for s in self._states.values() if s.endpoint is not None and s.endpoint.model is not None]
        for state in states:
            endpoint = state.endpoint
            assert endpoint is not None
            if not endpoint.healthy and now >= state.next_health_check:
                state.next_health_check = now + HEALTH_INTERVAL
                if _ping(endpoint.model):
                    endpoint.healthy = True
                    log.info("endpoint %s: its container answers GET /ping again", state.name)
                    self.backend.notify()
            self._converge(state)

    def run(self, stop: threading.Event, interval: float = HEALTH_INTERVAL) -> None:
        """Thread body: :meth:`step` until ``stop`` is set."""
        while not stop.wait(interval):
            try:
                self.step()
            except Exception:
                log.exception("endpoint lifecycle step failed")

    def close(self) -> None:
        """Stop loading models and remove every model directory made."""
        self._halt.set()
        with self._lock:
            states, self._states = list(self._states.values()), {}
        for state in states:
            for thread in state.threads:
                thread.join(1.0)
            if state.serving is not None:
                state.serving.discard()

    def _changed(self) -> None:
        try:
            self.on_change(self.names())
        except Exception:
            log.exception("endpoint change listener failed")


def _variants(config: dict[str, Any]) -> list[Variant]:
    return [Variant(v["VariantName"], v.get("InitialInstanceCount") or 1, v.get("InitialInstanceCount") or 1)
            for v in config.get("ProductionVariants") or [{"VariantName": DEFAULT_VARIANT}]]


def _ping(model: Any) -> bool:
    ping = getattr(model, "ping", None)
    try:
        return True if ping is None else bool(ping())
    except Exception:
        return False


def _load_failure(source: ModelSource, exc: BaseException) -> str:
    if isinstance(exc, RuntimeError) and "GET /ping" in str(exc):
        return f"Model {source.name}: {exc}"
    return (f"Model {source.name}: loading its handlers failed ({type(exc).__name__}: {exc}); fix model_fn "
            "(it receives the model directory) or the handler file, then create the endpoint again")
