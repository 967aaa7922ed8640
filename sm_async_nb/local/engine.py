"""The local stack's one engine: moto's server, the async runtime, the worker, the scaler and the
control namespace, in the process that runs it.

* moto's server on a thread (``motoserver/server.py``) for S3, SageMaker, SNS, SQS, STS,
  CloudWatch, Logs and Application Auto Scaling, in which each endpoint's model, endpoint config
  (``AsyncInferenceConfig``) and endpoint are created through ordinary boto3 calls;
* the async runtime server (``service/server.py``) speaking InvokeEndpointAsync, with the
  token-guarded control namespace (``control.py``) mounted under ``/_sm_async_nb/``;
* the worker (``service/worker.py``), reaching moto's backends directly through the adapter of
  ``motoserver/backends.py`` (or over HTTP when moto's internals differ), and the scaler
  (``service/scaling.py``) for instance counts, scale from zero and CloudWatch metrics.

Where the engine runs — this process, a child process, a detached server — is the placement's
business (``placement.py``); the engine is the same in all three. ``time_scale`` is how many
emulated seconds pass per real second for TTL and invocation-timeout accounting only.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from .config import EndpointSpec, StackConfig
from .control import ControlApp
from .info import MOTO_SERVICES, StackInfo
from .service.faults import INTERNAL_MARKER, Faults
from .service.hosting import describe, resolve_model
from .service.models import Backend, Endpoint
from .settings import (
    ACCOUNT_ID,
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    MOTO_REQUIREMENT,
    ROLE_ARN,
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
        self._adapters: list[Any] = []
        self._default_adapter: Any = None
        self.moto_access = ""  # "direct" or "http": how the worker reaches moto

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> StackInfo:
        """Start every part and create the first endpoint; returns where it serves.

        Raises:
            RuntimeError: started twice, or after stop().
        """
        from .motoserver.backends import open_sink, sink_kind
        from .motoserver.server import MotoServer
        from .service.modellogs import CloudWatchLogs
        from .service.server import RuntimeServer
        from .service.worker import Worker

        config = self.config
        with self._lock:
            if self._state is not StackState.NEW:
                raise RuntimeError("this stack engine was already started; make a new one")
            self._state = StackState.STARTING
            loaded: list[BaseException | None] = []
            try:
                # Load the model (often a slow import) while moto starts.
                self._default_adapter = resolve_model(config.model)
                loader = threading.Thread(target=_load, args=(self._default_adapter, loaded),
                                          name="sm-async-nb-model-load", daemon=True)
                loader.start()
                self._moto = MotoServer(self.moto_faults, config.host, config.moto_port)
                self._moto.start()
                self._make_clients()
                self._create_bucket(self.input_bucket)
                sink = open_sink(ACCOUNT_ID, self.region, self.input_bucket, self._clients["s3"],
                                 self._clients["sns"])
                self.moto_access = sink_kind(sink)
                self._worker = Worker(self.backend, sink, clock=self.clock, time_scale=config.time_scale,
                                      model_logs=CloudWatchLogs(self._clients["logs"]))
                self._spawn(self._worker.run, "sm-async-nb-worker")
                self._start_scaler()
                self._server = RuntimeServer(self.backend, self.faults, self.clock, config.host,
                                             config.runtime_port, control=ControlApp(self, self.token))
                self._server.start()
                loader.join()
                if loaded and loaded[0] is not None:
                    raise loaded[0]
                self._state = StackState.RUNNING
                self.add_endpoint(config.endpoint())
            except BaseException:
                self.stop()
                raise
        log.info("local stack engine serving: runtime %s, moto %s (worker reaches moto %s)", self._server.url,
                 self._moto.url, "directly" if self.moto_access == "direct" else "over HTTP")
        return self.info()

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=(self._halt,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_scaler(self) -> None:
        from .service.scaling import Scaler, ScalingSettings

        c = self.config
        settings = ScalingSettings(c.min_instances, c.max_instances, c.scale_out_seconds, c.scale_in_idle_seconds,
                                   c.metrics_period_seconds)
        self._scaler = Scaler(self.backend, self._clients, settings, self.clock)
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
                if self._worker is not None:
                    self._worker.close(timeout=STOP_GRACE_SECONDS)
                    self._worker.model_logs.close()
                for adapter in self._adapters:
                    adapter.close()
                for client in self._clients.values():
                    client.close()
            finally:
                if self._moto is not None:
                    self._moto.stop()
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
                         input_bucket=self.input_bucket, output_path=self.output_path, failure_path=self.failure_path)

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
        """Create an endpoint (model, endpoint config, endpoint) and serve it.

        With ``exist_ok``, an existing endpoint is kept, and the answer lists the options asked for
        that it (or the stack) has other values of. Answers ``{"added", "name", "differs"}``.

        Raises:
            ValueError: the endpoint exists (without ``exist_ok``), or the model cannot be loaded.
        """
        with self._lock:
            self._require_running()
            self.last_call = time.monotonic()
            known = self.specs.get(spec.name)
            if known is not None:
                if not exist_ok:
                    raise ValueError(f"endpoint {spec.name} already exists on this local stack")
                return {"added": False, "name": spec.name, "differs": spec.compare(known)}
            adapter = self._default_adapter if spec.model is None else resolve_model(spec.model)
            adapter.load()  # a broken model fails here, not on the first request
            if adapter not in self._adapters:
                self._adapters.append(adapter)
            endpoint = self._create(spec, adapter)
            self.backend.register(endpoint)
            if spec.asynchronous:
                self._scaler.register(endpoint, spec.concurrency or self.config.concurrency,
                                      spec.instance_count or 1)
            self.specs[spec.name] = spec
            self.endpoints_changed(list(self.specs))
            return {"added": True, "name": spec.name, "differs": []}

    def _create(self, spec: EndpointSpec, adapter: Any) -> Endpoint:
        name, sm = spec.name, self._clients["sagemaker"]
        per_instance = spec.concurrency or self.config.concurrency
        sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
            "Image": f"{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com/sm-async-nb-local:latest",
            "Environment": {"SM_ASYNC_NB_LOCAL_MODEL": describe(adapter)[:1024]}})
        extra: dict[str, Any] = {}
        if spec.asynchronous:
            output: dict[str, Any] = {"S3OutputPath": spec.output_path or self.output_path,
                                      "S3FailurePath": spec.failure_path or self.failure_path}
            if spec.sns or spec.include_response:
                sns = self._clients["sns"]
                output["NotificationConfig"] = {
                    "SuccessTopic": sns.create_topic(Name=f"{name}-success")["TopicArn"],
                    "ErrorTopic": sns.create_topic(Name=f"{name}-error")["TopicArn"]}
                if spec.include_response:
                    output["NotificationConfig"]["IncludeInferenceResponseIn"] = ["SUCCESS_NOTIFICATION_TOPIC"]
            extra["AsyncInferenceConfig"] = {
                "OutputConfig": output, "ClientConfig": {"MaxConcurrentInvocationsPerInstance": per_instance}}
        sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": f"{name}-model", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": spec.instance_count or 1}], **extra)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
        endpoint = self._read_endpoint(name, adapter, spec.delay)
        if spec.asynchronous and not endpoint.asynchronous:
            import moto

            raise RuntimeError(f"moto {moto.__version__} does not keep an endpoint config's AsyncInferenceConfig; "
                               f"the local stack needs {MOTO_REQUIREMENT}: pip install '{MOTO_REQUIREMENT}'")
        return endpoint

    def _read_endpoint(self, name: str, adapter: Any, delay: float) -> Endpoint:
        """Build the runtime's view of an endpoint from DescribeEndpoint/DescribeEndpointConfig."""
        sm = self._clients["sagemaker"]
        config_name = sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        config = sm.describe_endpoint_config(EndpointConfigName=config_name)
        instances = sum(v.get("InitialInstanceCount", 1) for v in config["ProductionVariants"])
        async_config = config.get("AsyncInferenceConfig") or {}
        output = async_config.get("OutputConfig") or {}
        notify = output.get("NotificationConfig") or {}
        per_instance = (async_config.get("ClientConfig") or {}).get("MaxConcurrentInvocationsPerInstance", 1)
        return Endpoint(name=name, model=adapter, asynchronous=bool(async_config),
                        output_path=output.get("S3OutputPath"), failure_path=output.get("S3FailurePath"),
                        success_topic=notify.get("SuccessTopic"), error_topic=notify.get("ErrorTopic"),
                        include_response_in=tuple(notify.get("IncludeInferenceResponseIn") or ()),
                        concurrency=max(1, per_instance * instances), instances=instances, delay=delay,
                        config_name=config_name)

    def records(self, endpoint_name: str | None = None) -> list[dict[str, Any]]:
        """The runtime's invocation records (status, times, locations, failure reason ...)."""
        return self.backend.records(endpoint_name)

    def stats(self) -> dict[str, Any]:
        """Per-endpoint counters, injected faults per server, notifications sent, how the worker
        reaches moto."""
        runtime, moto = self.faults.snapshot(), self.moto_faults.snapshot()
        return {"endpoints": self.backend.endpoint_stats(), "runtime": runtime, "moto": moto,
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
        """True while any request is queued or running."""
        return any(self.backend.queued(e.name) or self.backend.running(e.name) for e in self.backend.endpoints())

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
