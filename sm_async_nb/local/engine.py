"""The local stack's one engine: moto's server, the async runtime, the worker, the endpoint
lifecycle, the scaler and the control namespace, in the process that runs it.

* moto's server on a thread (``motoserver/server.py``) for S3, SageMaker, SNS, SQS, STS,
  CloudWatch, Logs and Application Auto Scaling, with the SageMaker routes the stack answers
  itself in front of it (``motoserver/sagemaker.py``): every endpoint created through the
  control plane — by boto3, the SDK, the AWS CLI or the stack's own ``add_endpoint``
  (``provision.py``) — goes through the endpoint lifecycle (``service/lifecycle.py``), which
  resolves its model (``service/resolution.py``) and serves it;
* the async runtime server (``service/server.py``) speaking InvokeEndpointAsync and
  InvokeInferenceRouterAsync, with the token-guarded control namespace (``control.py``) mounted
  under ``/_sm_async_nb/``;
* the inference routers (SPEC §20): the control plane's (``service/routers.py``, answered through
  the SageMaker routes) and their placement of requests across destination endpoints
  (``service/routing.py``, its own thread);
* the worker (``service/worker.py``), reaching moto's backends directly through the adapter of
  ``motoserver/backends.py`` (or over HTTP when moto's internals differ), and the scaler
  (``service/scaling.py``) acting on the scaling registered in Application Auto Scaling and
  putting the CloudWatch metrics.

Where the engine runs — this process, a child process, a detached server — is the placement's
business (``placement.py``); the engine is the same in all three. ``time_scale`` is how many
emulated seconds pass per real second for TTL, invocation-timeout, ``create_seconds`` and
scaling accounting.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import EndpointSpec, StackConfig, absolute_model
from .control import ControlApp
from .info import MOTO_SERVICES, StackInfo
from .provision import Defaults, OwnScaling, create_endpoint, register_scaling
from .service.faults import INTERNAL_MARKER, Faults
from .service.hosting import SHIPPED_IRIS, resolve_model
from .service.models import Backend
from .settings import (
    ACCOUNT_ID,
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    ScaledClock,
    StackState,
    input_bucket,
)

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 2.0  # model calls still running at stop get this long to return


class Engine:
    """One running local stack in this process; :meth:`start` once, :meth:`stop` any number of times.

    Its public methods are the control namespace's operations (``control.Operations``).
    """

    def __init__(self, config: StackConfig, token: str | None = None):
        from .settings import require_local_extra

        require_local_extra()
        self.config = config
        self.token = token or secrets.token_urlsafe(32)
        self.region = config.region
        self.input_bucket = input_bucket(config.region)
        self.output_path = f"s3://{self.input_bucket}/async-outputs/"
        self.failure_path = f"s3://{self.input_bucket}/async-failures/"
        self.faults = Faults(config.latency_ms, config.fault_rate, config.seed)  # the runtime's
        self.moto_faults = Faults(config.latency_ms, config.fault_rate, config.seed)
        self.clock = ScaledClock(config.time_scale)
        self.backend = Backend(ACCOUNT_ID, config.region)
        self.stop_requested = threading.Event()  # the control namespace's ``stop``: the host process ends
        self.last_call = time.monotonic()  # of the last add_endpoint (counts as activity for the idle timeout)
        self.specs: dict[str, EndpointSpec] = {}
        self.endpoints_changed: Callable[[list[str]], None] = lambda names: None  # the detached server's hook
        self._state = StackState.NEW
        self._lock = threading.RLock()
        self._halt = threading.Event()  # stops the worker and scaler threads
        self._threads: list[threading.Thread] = []
        self._moto: Any = None
        self._server: Any = None
        self._worker: Any = None
        self._scaler: Any = None
        self._clients: dict[str, Any] = {}
        self._routes: Any = None
        self._resolver: Any = None
        self._lifecycle: Any = None
        self._routing: Any = None
        self._work_dir: Path | None = None  # model directories (extracted model.tar.gz) live here
        self.moto_access = ""  # "direct" or "http": how the worker reaches moto

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> StackInfo:
        """Start every part and create the first endpoint; returns where it serves.

        Raises:
            RuntimeError: started twice, or after stop().
            ValueError: the first endpoint's model cannot be served (why, and what to do).
        """
        from .motoserver.backends import open_sink, sink_kind
        from .motoserver.sagemaker import SageMakerRoutes
        from .motoserver.server import MotoServer
        from .service.lifecycle import Lifecycle
        from .service.modellogs import CloudWatchLogs
        from .service.resolution import Resolver
        from .service.routers import Routers
        from .service.routing import LocalDestinations, Routing
        from .service.server import RuntimeServer
        from .service.worker import Worker

        config = self.config
        with self._lock:
            if self._state is not StackState.NEW:
                raise RuntimeError("this stack engine was already started; make a new one")
            self._state = StackState.STARTING
            loaded: list[BaseException | None] = []
            try:
                # Load the first model (often a slow import) while moto starts.
                first = resolve_model(config.model)
                loader = threading.Thread(target=_load, args=(first, loaded), name="sm-async-nb-model-load",
                                          daemon=True)
                loader.start()
                self._moto = MotoServer(self.moto_faults, config.host, config.moto_port, wrap=self._wrap_moto)
                self._moto.start()
                self._make_clients()
                self._create_bucket(self.input_bucket)
                sink = open_sink(ACCOUNT_ID, self.region, self.input_bucket, self._clients["s3"],
                                 self._clients["sns"])
                self.moto_access = sink_kind(sink)
                self._work_dir = Path(tempfile.mkdtemp(prefix="sm-async-nb-models-"))
                self._resolver = Resolver(sink.read, config.image_map, self._work_dir, self.clock)
                self._lifecycle = Lifecycle(self.backend, self._clients["sagemaker"], self._resolver, self.clock,
                                            create_seconds=config.create_seconds, account_id=ACCOUNT_ID,
                                            region=self.region)
                self._lifecycle.on_change = lambda names: self.endpoints_changed(names)
                self._worker = Worker(self.backend, sink, clock=self.clock, time_scale=config.time_scale,
                                      model_logs=CloudWatchLogs(self._clients["logs"]))
                self._spawn(self._worker.run, "sm-async-nb-worker")
                self._start_scaler()
                destinations = LocalDestinations(self._lifecycle, self.backend, ACCOUNT_ID, self.region)
                routers = Routers(destinations, self.clock, create_seconds=config.create_seconds, account_id=ACCOUNT_ID,
                                  region=self.region)
                self._routing = Routing(self.backend, routers, destinations, self.clock)
                self._spawn(self._routing.run, "sm-async-nb-router")
                assert isinstance(self._routes, SageMakerRoutes)
                self._routes.attach(self._lifecycle, self._scaler.refresh, routers)
                self._spawn(self._lifecycle.run, "sm-async-nb-fleet")
                self._server = RuntimeServer(self.backend, self.faults, self.clock, config.host,
                                             config.runtime_port, control=ControlApp(self, self.token),
                                             routing=self._routing)
                self._server.start()
                loader.join()
                if loaded and loaded[0] is not None:
                    raise loaded[0]
                self._resolver.share(self._pointer(config.model), first)
                self._state = StackState.RUNNING
                self.add_endpoint(config.endpoint())
            except BaseException:
                self.stop()
                raise
        log.info("local stack engine serving: runtime %s, moto %s (worker reaches moto %s)", self._server.url,
                 self._moto.url, "directly" if self.moto_access == "direct" else "over HTTP")
        return self.info()

    def _wrap_moto(self, app: Any) -> Any:
        """moto's app behind the SageMaker routes the stack answers itself."""
        from .motoserver.sagemaker import SageMakerRoutes

        self._routes = SageMakerRoutes(app)
        return self._routes

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=(self._halt,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_scaler(self) -> None:
        from .service.scaling import Scaler

        self._scaler = Scaler(self.backend, self._lifecycle, self._clients, self.config.metrics_period_seconds,
                              self.clock)
        self._spawn(self._scaler.run, "sm-async-nb-scaler")

    def stop(self) -> None:
        """Stop everything; leaves no thread or listening port. Idempotent.

        Queued requests are dropped; model calls still running get up to 2 s to return (a
        ``delay`` is cut short). A model that hangs longer is abandoned on its daemon thread.
        """
        with self._lock:
            if self._state in (StackState.NEW, StackState.STOPPED):
                self._state = StackState.STOPPED
                return
            self._state = StackState.STOPPING
            try:
                if self._server is not None:
                    self._server.stop()
                self._halt.set()
                self.backend.notify()
                for thread in self._threads:
                    thread.join()
                if self._lifecycle is not None:
                    self._lifecycle.close()
                if self._worker is not None:
                    self._worker.close(timeout=STOP_GRACE_SECONDS)
                    self._worker.model_logs.close()
                if self._resolver is not None:
                    self._resolver.close()
                for client in self._clients.values():
                    client.close()
            finally:
                if self._moto is not None:
                    self._moto.stop()
                if self._work_dir is not None:
                    shutil.rmtree(self._work_dir, ignore_errors=True)
                self._state = StackState.STOPPED
                self.stop_requested.set()

    @property
    def running(self) -> bool:
        return self._state is StackState.RUNNING

    def _require_running(self) -> None:
        if self._state is not StackState.RUNNING:
            raise RuntimeError(f"the local stack is {self._state}")

    def info(self) -> StackInfo:
        """Where this engine serves."""
        self._require_running()
        return StackInfo(pid=os.getpid(), host=self.config.host, moto_port=self._moto.port,
                         runtime_port=self._server.port, region=self.region, endpoint_name=self.config.endpoint_name,
                         input_bucket=self.input_bucket, output_path=self.output_path, failure_path=self.failure_path,
                         time_scale=self.config.time_scale)

    # -- the control plane, through moto --------------------------------------------------------
    def _make_clients(self) -> None:
        import boto3
        from botocore.config import Config

        config = Config(user_agent_extra=INTERNAL_MARKER, retries={"mode": "standard", "max_attempts": 5},
                        max_pool_connections=64)
        session = boto3.Session(aws_access_key_id=DUMMY_ACCESS_KEY_ID, aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
                                region_name=self.region)
        for service in MOTO_SERVICES:
            self._clients[service] = session.client(service, endpoint_url=self._moto.url,  # type: ignore[call-overload]
                                                    config=config)

    def _create_bucket(self, bucket: str) -> None:
        extra = {} if self.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": self.region}}
        self._clients["s3"].create_bucket(Bucket=bucket, **extra)

    # -- operations (the control namespace's) ---------------------------------------------------
    def add_endpoint(self, spec: EndpointSpec, exist_ok: bool = False) -> dict[str, Any]:
        """Create an endpoint (model, endpoint config, endpoint) through the control plane, as any
        client would, wait until it is InService and register the stack's scaling for it.

        With ``exist_ok``, an existing endpoint is kept, and the answer lists the options asked for
        that it (or the stack) has other values of. Answers ``{"added", "name", "differs"}``.

        Raises:
            ValueError: the endpoint exists (without ``exist_ok``), or its model cannot be served
                (the endpoint's FailureReason; nothing is left of it).
        """
        with self._lock:
            self._require_running()
            self.last_call = time.monotonic()
            known = self.specs.get(spec.name)
            if known is not None or self._lifecycle.knows(spec.name):  # made here, or by another client
                if not exist_ok:
                    raise ValueError(f"endpoint {spec.name} already exists on this local stack")
                return {"added": False, "name": spec.name, "differs": spec.compare(known) if known else []}
            c = self.config
            pointer = self._pointer(c.model if spec.model is None else spec.model)
            defaults = Defaults(self.region, self.output_path, self.failure_path, c.concurrency, c.time_scale)
            create_endpoint(self._clients, spec, pointer, defaults)
            if spec.asynchronous:
                register_scaling(self._clients, self._scaler.hold, spec.name, spec.instance_count or 1,
                                 OwnScaling(c.min_instances, c.max_instances, c.scale_out_seconds,
                                            c.scale_in_idle_seconds))
            self.specs[spec.name] = spec
            return {"added": True, "name": spec.name, "differs": []}

    def _pointer(self, model: Any) -> str:
        """How the model's Environment points at ``model`` (None: the shipped iris model)."""
        if model is None:
            return str(SHIPPED_IRIS)
        if isinstance(model, (str, os.PathLike)):
            return str(absolute_model(model))
        return str(self._resolver.pointer(model))

    def map_images(self, image_map: Any) -> dict[str, Any]:
        """Add container-image mappings (``image_map``'s IMAGE → URL) for endpoints created from now on.

        Raises:
            ValueError: a mapping that is not IMAGE → http(s) URL.
        """
        pairs = StackConfig(image_map=image_map).image_map
        self._require_running()
        self._resolver.map_images(pairs)
        self.config = self.config.replace(image_map=tuple(sorted({**dict(self.config.image_map),
                                                                   **dict(pairs)}.items())))
        return {"image_map": [list(pair) for pair in self.config.image_map]}

    def records(self, endpoint_name: str | None = None, router_name: str | None = None) -> list[dict[str, Any]]:
        """The runtime's invocation records (status, times, locations, failure reason ...), of one endpoint
        and/or of the requests sent through one inference router (where each ran, how often it moved)."""
        return self.backend.records(endpoint_name, router_name)

    def stats(self) -> dict[str, Any]:
        """Per-endpoint counters, injected faults per server, notifications sent, how the worker
        reaches moto."""
        runtime, moto = self.faults.snapshot(), self.moto_faults.snapshot()
        return {"endpoints": self.backend.endpoint_stats(), "runtime": runtime, "moto": moto,
                "routers": self._routing.stats() if self._routing else {},
                "faults_injected": runtime["faults_injected"] + moto["faults_injected"],
                "notifications_sent": self._worker.notifications_sent if self._worker else 0,
                "moto_access": self.moto_access}

    def status(self) -> dict[str, Any]:
        """The process, its endpoints, counters and how long it has been idle."""
        stats = self.stats()
        return {"pid": os.getpid(), "endpoints": list(stats["endpoints"]), "stats": stats,
                "idle_s": time.monotonic() - self.last_activity(), "info": vars(self.info()),
                "config": self.config.shared()}

    def configure_faults(self, latency_ms: float | None = None, fault_rate: float | None = None,
                         seed: int | None = None) -> None:
        """Change latency/fault emulation on both servers while running.

        Raises:
            ValueError: a value out of range (checked as ``StackConfig`` checks it).
        """
        changes: dict[str, Any] = {k: v for k, v in {"latency_ms": latency_ms, "fault_rate": fault_rate,
                                                      "seed": seed}.items() if v is not None}
        self.config = self.config.replace(**changes)
        for faults in (self.faults, self.moto_faults):
            faults.configure(latency_ms=latency_ms, fault_rate=fault_rate, seed=seed)

    def last_activity(self) -> float:
        """Monotonic time of the last request from outside, on either server, or of the last add_endpoint."""
        return max(self.faults.last_request, self.moto_faults.last_request, self.last_call)

    def busy(self) -> bool:
        """True while any request is queued or running, or held by an inference router."""
        return (any(self.backend.queued(e.name) or self.backend.running(e.name) for e in self.backend.endpoints())
                or bool(self._routing and self._routing.held()))

    def wait_until_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is queued or running (True), or ``timeout`` real seconds pass."""
        deadline = time.monotonic() + timeout
        while not self._halt.is_set():
            if not self.busy():
                return True
            with self.backend.changed:
                self.backend.changed.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                return not self.busy()
        return not self.busy()

    def request_stop(self) -> None:
        """Ask the process hosting the engine to stop it (it watches :attr:`stop_requested`)."""
        self.stop_requested.set()


def _load(adapter: Any, outcome: list[BaseException | None]) -> None:
    try:
        adapter.load()
        outcome.append(None)
    except BaseException as exc:  # re-raised by start()
        outcome.append(exc)
