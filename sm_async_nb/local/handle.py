"""One handle on a running local stack, wherever its engine runs.

:class:`StackHandle` is what every caller holds — ``sma.LocalStack`` is one, and so is what
``%sm_async local start`` or ``sm-async-nb local status`` find for the detached stack. It knows
where the stack serves (a :class:`~sm_async_nb.local.info.StackInfo`), reaches the stack's
control namespace through a :class:`~sm_async_nb.local.control.Control`, and leaves starting,
stopping and passing models across processes to its :class:`Placement` — so no caller needs to
know, or test, where the stack runs.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

from .config import EndpointSpec
from .control import Control
from .info import StackInfo
from .settings import ACCOUNT_ID, DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY

if TYPE_CHECKING:
    from ..client import AsyncInferenceClient


class Placement(Protocol):
    """Where a stack's engine runs: ``this-process``, ``child`` or ``detached`` (``placement.py``)."""

    name: str
    outlives_owner: bool  # True: stopping to use it (release) leaves it running for others
    started: bool  # False: start() found the stack already running (detached) and reattached
    differs: list[str]  # then: the options asked for that the running stack keeps other values of

    def export_model(self, model: Any) -> Any:
        """``model`` in a form the engine's process can load (a path, a URL, or the object itself)."""
        ...

    def stop(self) -> None:
        """Stop the stack (idempotent)."""
        ...

    def release(self) -> None:
        """Stop using the stack: stop it, unless it outlives its owner."""
        ...


class StackHandle:
    """A running local stack (SPEC §3, §8, §13): where it serves, clients for it, its records,
    endpoints and faults, and stopping it."""

    def __init__(self, info: StackInfo | None = None, control: Control | None = None,
                 placement: Placement | None = None, *, started: bool = True):
        self._info, self._control, self._placement = info, control, placement
        self.account_id = ACCOUNT_ID
        self._pid: int | None = None
        self.started = started  # False: an already running (detached) stack was reattached to
        self.differs: list[str] = []  # options asked for that the running stack keeps other values of
        if info is not None:
            self._describe(info)

    def _describe(self, info: StackInfo) -> None:
        self._pid = info.pid  # kept after stop(): which process it was
        self.endpoint_name, self.region, self.host = info.endpoint_name, info.region, info.host
        self.input_bucket, self.output_path, self.failure_path = (info.input_bucket, info.output_path,
                                                                  info.failure_path)

    def _bind(self, info: StackInfo, control: Control, placement: Placement) -> None:
        self._info, self._control, self._placement = info, control, placement
        self._describe(info)

    def _running(self) -> tuple[StackInfo, Control]:
        if self._info is None or self._control is None:
            raise RuntimeError("the local stack is not running; call start() (or use `with LocalStack() as stack:`)")
        return self._info, self._control

    # -- where it serves -------------------------------------------------------------------------
    @property
    def where(self) -> str:
        """``this-process``, ``child`` or ``detached``."""
        return self._placement.name if self._placement is not None else "unknown"

    @property
    def outlives_owner(self) -> bool:
        return self._placement is not None and self._placement.outlives_owner

    @property
    def pid(self) -> int:
        """The process the engine runs (or ran) in."""
        if self._pid is None:
            self._running()
        assert self._pid is not None
        return self._pid

    @property
    def endpoint_urls(self) -> dict[str, str]:
        """endpoint_url per boto3 service name."""
        return self._running()[0].endpoint_urls

    @property
    def env(self) -> dict[str, str]:
        """Environment variables pointing any AWS SDK or the AWS CLI at this stack."""
        return self._running()[0].env

    @property
    def ports(self) -> dict[str, int]:
        info = self._running()[0]
        return {"moto": info.moto_port, "runtime": info.runtime_port}

    # -- clients ---------------------------------------------------------------------------------
    def session(self) -> Any:
        """A boto3.Session with the stack's dummy credentials and region."""
        import boto3

        return boto3.Session(aws_access_key_id=DUMMY_ACCESS_KEY_ID, aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
                             region_name=self.region)

    def client(self, **kwargs: Any) -> AsyncInferenceClient:
        """An AsyncInferenceClient wired to this stack, knowing its emulated clock (``time_scale``, for TTL and
        drain-rate arithmetic); keyword arguments are passed through."""
        from ..client import AsyncInferenceClient  # lazily: the stack is usable without the client

        urls = self.endpoint_urls
        kwargs.setdefault("s3_input_path", f"s3://{self.input_bucket}/inputs/")
        kwargs.setdefault("time_scale", self._running()[0].time_scale)  # the emulated clock's pace
        return AsyncInferenceClient(session=self.session(), endpoint_urls=urls, **kwargs)

    def boto3_client(self, service: str, **kwargs: Any) -> Any:
        """A plain boto3 client for ``service`` pointed at the stack (for tests and notebooks)."""
        return self.session().client(service, endpoint_url=self.endpoint_urls[service], **kwargs)

    # -- the control namespace -------------------------------------------------------------------
    def call(self, op: str, *, http_timeout: float = 60.0, **args: Any) -> dict[str, Any]:
        """One operation of the stack's control namespace (see ``control.py``)."""
        return self._running()[1].call(op, http_timeout=http_timeout, **args)

    def add_endpoint(self, name: str, model: Any = None, *, concurrency: int | None = None, asynchronous: bool = True,
                     sns: bool = False, delay: float = 0.0, instance_count: int | None = None,
                     output_path: str | None = None, failure_path: str | None = None, include_response: bool = False,
                     exist_ok: bool = False) -> bool:
        """Create another endpoint (model, endpoint config, endpoint) and serve it; True when added.

        ``model=None`` reuses the stack's model. ``asynchronous=False`` creates an endpoint config
        without AsyncInferenceConfig: invoking it asynchronously is a ValidationError, as on AWS.
        With ``exist_ok``, an existing endpoint is kept (False) and :attr:`differs` lists the
        options asked for that it keeps other values of.

        Raises:
            ValueError: a bad option, the endpoint exists (without ``exist_ok``), or the model
                cannot be loaded.
        """
        spec = EndpointSpec(name, model, concurrency=concurrency, delay=delay, sns=sns,
                            instance_count=instance_count, asynchronous=asynchronous, output_path=output_path,
                            failure_path=failure_path, include_response=include_response)
        self._running()
        assert self._placement is not None
        if spec.model is not None:
            spec = dataclasses.replace(spec, model=self._placement.export_model(spec.model))
        answer = self.call("add_endpoint", exist_ok=exist_ok, **spec.to_args())
        self.differs = list(answer["differs"])
        return bool(answer["added"])

    def records(self, endpoint_name: str | None = None, router_name: str | None = None) -> list[dict[str, Any]]:
        """The runtime's invocation records (status, times, locations, failure reason ...), of one endpoint
        and/or of the requests sent through one inference router. A routed request's record names its
        ``inference_router_name`` and ``routing_target_name``, the destination it ran at (``endpoint_name``),
        ``destinations_tried`` in order and how many times it moved (``moves``)."""
        return list(self.call("records", endpoint_name=endpoint_name, router_name=router_name)["records"])

    def wait_until_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing is queued or running (True), or ``timeout`` real seconds pass (False)."""
        return bool(self.call("wait_idle", http_timeout=timeout + 30, timeout=timeout)["idle"])

    def configure_faults(self, latency_ms: float | None = None, fault_rate: float | None = None,
                         seed: int | None = None) -> None:
        """Change latency/fault emulation on both servers while running.

        Raises:
            ValueError: a value out of range.
        """
        args = {k: v for k, v in {"latency_ms": latency_ms, "fault_rate": fault_rate, "seed": seed}.items()
                if v is not None}
        self.call("faults", **args)

    @property
    def stats(self) -> dict[str, Any]:
        """Per-endpoint counters (max_in_flight ...), per inference router and routing target what was
        received, moved and ran where (``routers``), injected faults per server, notifications sent,
        and how the worker reaches moto (``moto_access``: direct or http)."""
        return self.call("stats")

    def status(self) -> dict[str, Any]:
        """The engine's pid, endpoints, stats, idle seconds and stack-wide options.

        Raises:
            OSError: the stack could not be reached.
        """
        return self.call("status")

    # -- the end ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the stack; leaves no process, thread or listening port of it. Idempotent."""
        if self._placement is not None:
            self._placement.stop()
        self._info = self._control = None

    def release(self) -> None:
        """Stop using the stack: a detached one keeps running for others, any other one stops."""
        if self._placement is not None:
            self._placement.release()
        self._info = self._control = None

    def __repr__(self) -> str:
        if self._info is None:
            return f"<{type(self).__name__} not running>"
        return (f"<{type(self).__name__} {self.where} pid={self._info.pid} endpoint={self.endpoint_name!r} "
                f"runtime={self._info.runtime_url}>")
