"""LocalStack: SageMaker asynchronous inference on your laptop, no AWS account needed.

It starts, on loopback only:

* a moto server (a child process; a thread with ``moto_in_process=True``, which also makes the
  worker write moto's backends directly: the detached stack's lean mode) for S3, SageMaker, SNS,
  SQS, STS, CloudWatch, Logs and Application Auto Scaling, in which the model, an endpoint config
  with ``AsyncInferenceConfig`` and the endpoint are created through ordinary boto3 calls;
* an async runtime server speaking InvokeEndpointAsync to any unmodified client configured with
  ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (see :attr:`LocalStack.env`);
* a worker thread that runs queued requests through the model (see ``worker.py``), and a
  scaler thread for instance counts, scale from zero and CloudWatch metrics (``scaling.py``).

``time_scale`` is how many emulated seconds pass per real second **for TTL and
invocation-timeout accounting only**: with ``time_scale=60`` a request with
RequestTTLSeconds=60 expires after about one real second. Model work (``delay`` and the model's
own run time) is real time. The default 1.0 is faithful.

Lifecycle: :meth:`start` once, :meth:`stop` any number of times (idempotent). A stopped stack
cannot be started again (:meth:`start` raises RuntimeError): create a new ``LocalStack``.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..contract.validation import check_member
from .service.faults import INTERNAL_MARKER, Faults
from .service.hosting import describe, resolve_model
from .service.models import Backend, Endpoint
from .settings import (
    ACCOUNT_ID,
    DEFAULT_ENDPOINT,
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    ROLE_ARN,
    ScaledClock,
    StackState,
    check_host,
    require_local_extra,
)

if TYPE_CHECKING:
    from ..client import AsyncInferenceClient


class LocalStack:
    """The embedded local stack (SPEC §8). Use as a context manager or start()/stop()."""

    def __init__(self, model: Any = None, endpoint_name: str = DEFAULT_ENDPOINT, concurrency: int = 2,
                 latency_ms: float = 0, fault_rate: float = 0.0, *, region: str = "us-east-1",
                 delay: float = 0.0, sns: bool = False, time_scale: float = 1.0, instance_count: int = 1,
                 host: str = "127.0.0.1", allow_non_loopback: bool = False, moto_port: int = 0,
                 runtime_port: int = 0, seed: int | None = None, moto_in_process: bool = False,
                 control_app: Any = None, min_instances: int = 1, max_instances: int = 1,
                 scale_out_seconds: float | None = 0.0, scale_in_idle_seconds: float | None = None,
                 metrics_period_seconds: float = 60.0):
        require_local_extra()
        from .service.scaling import ScalingSettings

        self.scaling = ScalingSettings(min_instances, max_instances, scale_out_seconds, scale_in_idle_seconds,
                                       metrics_period_seconds)  # validates them
        check_member("EndpointName", endpoint_name)
        if concurrency < 1 or instance_count < 1:
            raise ValueError("concurrency and instance_count must be at least 1")
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay}")
        self.host = check_host(host, allow_non_loopback)
        self.model, self.endpoint_name, self.region = model, endpoint_name, region
        self.concurrency, self.instance_count, self.delay, self.sns = concurrency, instance_count, delay, sns
        self.time_scale, self.seed = time_scale, seed
        self._faults = Faults(latency_ms, fault_rate, seed)  # also validates the two settings
        self._clock = ScaledClock(time_scale)
        self._ports = {"moto": moto_port, "runtime": runtime_port}
        self.account_id = ACCOUNT_ID
        self.input_bucket = f"sagemaker-{region}-{ACCOUNT_ID}"
        self.output_path = f"s3://{self.input_bucket}/async-outputs/"
        self.failure_path = f"s3://{self.input_bucket}/async-failures/"
        self._state = StackState.NEW
        self._lock = threading.RLock()
        self._moto: Any = None
        self._server: Any = None
        self._worker: Any = None
        self._worker_thread: threading.Thread | None = None
        self._worker_stop = threading.Event()
        self._scaler: Any = None
        self._scaler_thread: threading.Thread | None = None
        self._clients: dict[str, Any] = {}
        self._backend = Backend(ACCOUNT_ID, region)
        self._adapters: list[Any] = []
        self._default_adapter: Any = None
        # moto in this process and the worker writing its backends directly (the lean emulator):
        # only for a process that hosts nothing but the stack (see motoproc's docstring).
        self.moto_in_process, self._control_app = moto_in_process, control_app

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> LocalStack:
        """Start moto, the runtime and the worker, then create the default endpoint."""
        from .motoserver.server import InProcessMoto, MotoProcess
        from .service.server import RuntimeServer
        from .service.worker import Worker

        with self._lock:
            if self._state is StackState.RUNNING:
                return self
            if self._state is not StackState.NEW:
                raise RuntimeError("this LocalStack was stopped; create a new LocalStack to start again")
            self._state = StackState.STARTING
            loaded: list[BaseException | None] = []
            try:
                # Load the model (often a slow import) while the moto child starts.
                self._default_adapter = resolve_model(self.model)
                loader = threading.Thread(target=self._load_model, args=(self._default_adapter, loaded),
                                          name="sm-async-nb-model-load", daemon=True)
                loader.start()
                snap = self._faults.snapshot()
                kind = InProcessMoto if self.moto_in_process else MotoProcess
                self._moto = kind(self.host, self._ports["moto"], snap["latency_ms"], snap["fault_rate"], self.seed)
                self._moto.start()
                self._make_clients()
                self._create_bucket(self.input_bucket)
                from .service.modellogs import CloudWatchLogs

                self._worker = Worker(self._backend, self._sink(), clock=self._clock, time_scale=self.time_scale,
                                      model_logs=CloudWatchLogs(self._clients["logs"]))
                self._worker_thread = threading.Thread(target=self._worker.run, args=(self._worker_stop,),
                                                       name="sm-async-nb-worker", daemon=True)
                self._worker_thread.start()
                self._start_scaler()
                self._server = RuntimeServer(self._backend, self._faults, self._clock, self.host,
                                             self._ports["runtime"], control=self._control_app)
                self._server.start()
                loader.join()
                if loaded and loaded[0] is not None:
                    raise loaded[0]
                self._state = StackState.RUNNING
                self.add_endpoint(self.endpoint_name, concurrency=self.concurrency, sns=self.sns,
                                  delay=self.delay, instance_count=self.instance_count)
            except BaseException:
                self.stop()
                raise
        return self

    def _start_scaler(self) -> None:
        from .service.scaling import Scaler

        self._scaler = Scaler(self._backend, self._clients, self.scaling, self._clock)
        self._scaler_thread = threading.Thread(target=self._scaler.run, args=(self._worker_stop,),
                                               name="sm-async-nb-scaler", daemon=True)
        self._scaler_thread.start()

    def _sink(self) -> Any:
        """moto's backends directly when moto is in this process, else boto3 over HTTP."""
        from .service.worker import BotoSink

        if self.moto_in_process:
            from .motoserver.backends import MotoSink

            return MotoSink(ACCOUNT_ID, self.region)
        return BotoSink(self._clients["s3"], self._clients["sns"])

    @staticmethod
    def _load_model(adapter: Any, outcome: list[BaseException | None]) -> None:
        try:
            adapter.load()
            outcome.append(None)
        except BaseException as exc:  # re-raised by start()
            outcome.append(exc)

    def stop(self) -> None:
        """Stop everything; leaves no thread, child process or listening port. Idempotent.

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
                self._worker_stop.set()
                if self._scaler_thread is not None:
                    self._scaler_thread.join()
                if self._worker is not None:
                    self._backend.notify()
                    if self._worker_thread is not None:
                        self._worker_thread.join()
                    self._worker.close(timeout=2.0)
                    if self._worker.model_logs is not None:
                        self._worker.model_logs.close()
                for adapter in self._adapters:
                    adapter.close()
                for client in self._clients.values():
                    client.close()
            finally:
                if self._moto is not None:
                    self._moto.stop()
                self._state = StackState.STOPPED

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._state is StackState.RUNNING

    def _require_running(self) -> None:
        if self._state is not StackState.RUNNING:
            raise RuntimeError(f"the LocalStack is {self._state}; call start() (or use `with LocalStack() as stack:`)")

    # -- wiring for clients ---------------------------------------------------------------------
    @property
    def endpoint_urls(self) -> dict[str, str]:
        """endpoint_url per boto3 service name."""
        self._require_running()
        moto = self._moto.url
        return {"s3": moto, "sagemaker": moto, "sagemaker-runtime": self._server.url,
                "sns": moto, "sqs": moto, "sts": moto, "cloudwatch": moto, "application-autoscaling": moto,
                "logs": moto}

    @property
    def env(self) -> dict[str, str]:
        """Environment variables pointing any AWS SDK or the AWS CLI at this stack."""
        urls = self.endpoint_urls
        return {
            "AWS_ENDPOINT_URL_S3": urls["s3"],
            "AWS_ENDPOINT_URL_SAGEMAKER": urls["sagemaker"],
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": urls["sagemaker-runtime"],
            "AWS_ENDPOINT_URL_SNS": urls["sns"],
            "AWS_ENDPOINT_URL_SQS": urls["sqs"],
            "AWS_ENDPOINT_URL_STS": urls["sts"],
            "AWS_ENDPOINT_URL_CLOUDWATCH": urls["cloudwatch"],
            "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING": urls["application-autoscaling"],
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": urls["logs"],
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "SM_ASYNC_NB_S3_INPUT_PATH": f"s3://{self.input_bucket}/inputs/",
        }

    @property
    def ports(self) -> dict[str, int]:
        self._require_running()
        return {"moto": self._moto.port, "runtime": self._server.port}

    @property
    def moto_pid(self) -> int | None:
        return self._moto.pid if self._moto is not None else None

    def session(self) -> Any:
        """A boto3.Session with the stack's dummy credentials and region."""
        import boto3

        return boto3.Session(aws_access_key_id=DUMMY_ACCESS_KEY_ID,
                             aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY, region_name=self.region)

    def client(self, **kwargs: Any) -> AsyncInferenceClient:
        """An AsyncInferenceClient wired to this stack; keyword arguments are passed through."""
        from ..client import AsyncInferenceClient  # lazily: the stack is usable without the client

        self._require_running()
        kwargs.setdefault("s3_input_path", f"s3://{self.input_bucket}/inputs/")
        return AsyncInferenceClient(session=self.session(), endpoint_urls=self.endpoint_urls, **kwargs)

    def boto3_client(self, service: str, **kwargs: Any) -> Any:
        """A plain boto3 client for ``service`` pointed at the stack (for tests and notebooks)."""
        return self.session().client(service, endpoint_url=self.endpoint_urls[service], **kwargs)

    # -- control plane ---------------------------------------------------------------------------
    def _make_clients(self) -> None:
        from botocore.config import Config

        config = Config(user_agent_extra=INTERNAL_MARKER, retries={"mode": "standard", "max_attempts": 5},
                        max_pool_connections=64)
        session = self.session()
        for service in ("s3", "sagemaker", "sns", "sts", "cloudwatch", "application-autoscaling", "logs"):
            self._clients[service] = session.client(service, endpoint_url=self._moto.url, config=config)

    def _create_bucket(self, bucket: str) -> None:
        extra = {} if self.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": self.region}}
        self._clients["s3"].create_bucket(Bucket=bucket, **extra)

    def add_endpoint(self, name: str, model: Any = None, *, concurrency: int | None = None,
                     asynchronous: bool = True, sns: bool = False, delay: float = 0.0,
                     instance_count: int | None = None, output_path: str | None = None,
                     failure_path: str | None = None, include_response: bool = False) -> Endpoint:
        """Create another endpoint (model, endpoint config, endpoint) and serve it.

        ``model=None`` reuses the stack's model. ``asynchronous=False`` creates an endpoint config
        without AsyncInferenceConfig: invoking it asynchronously is a ValidationError, as on AWS.
        """
        check_member("EndpointName", name)
        with self._lock:
            self._require_running()
            if self._backend.endpoint(name) is not None:
                raise ValueError(f"endpoint {name} already exists on this LocalStack")
            adapter = self._default_adapter if model is None else resolve_model(model)
            adapter.load()  # a broken model file fails here, not on the first request
            if adapter not in self._adapters:
                self._adapters.append(adapter)
            per_instance = concurrency or self.concurrency
            count = instance_count or 1
            sm = self._clients["sagemaker"]
            sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={
                "Image": f"{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com/sm-async-nb-local:latest",
                "Environment": {"SM_ASYNC_NB_LOCAL_MODEL": describe(adapter)[:1024]}})
            extra: dict[str, Any] = {}
            if asynchronous:
                output: dict[str, Any] = {"S3OutputPath": output_path or self.output_path,
                          "S3FailurePath": failure_path or self.failure_path}
                if sns or include_response:
                    sns_client = self._clients["sns"]
                    output["NotificationConfig"] = {
                        "SuccessTopic": sns_client.create_topic(Name=f"{name}-success")["TopicArn"],
                        "ErrorTopic": sns_client.create_topic(Name=f"{name}-error")["TopicArn"]}
                    if include_response:
                        output["NotificationConfig"]["IncludeInferenceResponseIn"] = ["SUCCESS_NOTIFICATION_TOPIC"]
                extra["AsyncInferenceConfig"] = {
                    "OutputConfig": output, "ClientConfig": {"MaxConcurrentInvocationsPerInstance": per_instance}}
            sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": f"{name}-model", "InstanceType": "ml.m5.large",
                "InitialInstanceCount": count}], **extra)
            sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
            endpoint = self._read_endpoint(name, adapter, delay)
            self._backend.register(endpoint)
            if asynchronous:
                self._scaler.register(endpoint, per_instance, count)
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

    # -- observation -----------------------------------------------------------------------------
    def records(self, endpoint_name: str | None = None) -> list[dict[str, Any]]:
        """The runtime's invocation records (status, times, locations, failure reason ...)."""
        return self._backend.records(endpoint_name)

    @property
    def stats(self) -> dict[str, Any]:
        """Per-endpoint counters (max_in_flight ...) and injected faults per server."""
        runtime = self._faults.snapshot()
        moto: dict[str, Any] = {}
        if self._state is StackState.RUNNING:
            moto = self._moto.control()
        return {"endpoints": self._backend.endpoint_stats(), "runtime": runtime, "moto": moto,
                "faults_injected": runtime["faults_injected"] + moto.get("faults_injected", 0),
                "notifications_sent": self._worker.notifications_sent if self._worker else 0}

    def configure_faults(self, latency_ms: float | None = None, fault_rate: float | None = None,
                         seed: int | None = None) -> None:
        """Change latency/fault emulation on both servers while running."""
        self._require_running()
        self._faults.configure(latency_ms=latency_ms, fault_rate=fault_rate, seed=seed)
        self._moto.control(**{k: v for k, v in {"latency_ms": latency_ms, "fault_rate": fault_rate,
                                                 "seed": seed}.items() if v is not None})

    @property
    def last_request(self) -> float:
        """Monotonic time of the last request from outside the stack, on either server."""
        moto_faults = getattr(self._moto, "faults", None)  # moto in this process keeps its own
        return max(self._faults.last_request, moto_faults.last_request if moto_faults else 0.0)

    def busy(self) -> bool:
        """True while any request is queued or running."""
        return any(self._backend.queued(e.name) or self._backend.running(e.name) for e in self._backend.endpoints())

    def wait_until_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is queued or running (True), or ``timeout`` real seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.busy():
                return True
            time.sleep(0.01)
        return False

    def __repr__(self) -> str:
        where = f" runtime={self._server.url} moto={self._moto.url}" if self._state is StackState.RUNNING else ""
        return f"<LocalStack endpoint={self.endpoint_name!r} {self._state}{where}>"
