"""LocalStack: SageMaker asynchronous inference on your laptop, no AWS account needed.

``sma.LocalStack(**options)`` is a :class:`~sm_async_nb.local.handle.StackHandle` you start and
stop yourself (a context manager, or start()/stop()). Its options are :class:`StackConfig`'s
(SPEC §8, §10, §13; defaults and checks defined there once); ``where`` says where its engine
runs (``placement.py``): ``"child"`` (default: a child process that ends with this one),
``"this-process"`` or ``"detached"`` (the per-user stack that outlives this process; stopping it
stops it for everyone). The engine is the same everywhere (``engine.py``).

Lifecycle: :meth:`start` once, :meth:`stop` any number of times (idempotent). A stopped stack
cannot be started again (:meth:`start` raises RuntimeError): create a new ``LocalStack``.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import fields
from typing import Any

from .config import StackConfig
from .handle import StackHandle
from .placement import CHILD, placement
from .settings import StackState, input_bucket, require_local_extra


class LocalStack(StackHandle):
    """The embedded local stack (SPEC §8). Use as a context manager or start()/stop().

    Args:
        *options, **options: :class:`StackConfig`'s fields (model, endpoint_name, concurrency,
            latency_ms, fault_rate may be given by position).
        where: ``"child"``, ``"this-process"`` or ``"detached"`` (see the module docstring).

    Raises:
        ValueError: a bad option (nothing is started).
        ImportError: the ``local`` extra is not installed (the message has the pip command).
    """

    def __init__(self, *args: Any, where: str = CHILD, **options: Any):
        require_local_extra()
        self._setup(StackConfig(*args, **options), where)

    @classmethod
    def from_config(cls, config: StackConfig, where: str = CHILD) -> LocalStack:
        """A stack made with ``config`` (not started)."""
        require_local_extra()
        stack = cls.__new__(cls)
        stack._setup(config, where)
        return stack

    def _setup(self, config: StackConfig, where: str) -> None:
        super().__init__()
        self.config = config
        self._where = placement(where)
        self._state = StackState.NEW
        self._lock = threading.RLock()
        self.endpoint_name, self.region, self.host = config.endpoint_name, config.region, config.host
        self.input_bucket = input_bucket(config.region)
        self.output_path = f"s3://{self.input_bucket}/async-outputs/"
        self.failure_path = f"s3://{self.input_bucket}/async-failures/"

    def start(self) -> LocalStack:
        """Start the engine where ``where`` says and create the first endpoint.

        Raises:
            RuntimeError: the stack was stopped, or did not start (why).
            ValueError: the model cannot be found or loaded.
        """
        with self._lock:
            if self._state is StackState.RUNNING:
                return self
            if self._state is not StackState.NEW:
                raise RuntimeError("this LocalStack was stopped; create a new LocalStack to start again")
            self._state = StackState.STARTING
            try:
                info, control = self._where.start(self.config)
            except BaseException:
                self._state = StackState.STOPPED
                raise
            self._bind(info, control, self._where)
            self.started, self.differs = self._where.started, list(self._where.differs)
            self._state = StackState.RUNNING
        return self

    def stop(self) -> None:
        """Stop the stack; leaves no process, thread or listening port of it. Idempotent.

        Queued requests are dropped; model calls still running get up to 2 s to return.
        """
        with self._lock:
            if self._state is not StackState.NEW:
                super().stop()
            self._state = StackState.STOPPED

    def release(self) -> None:
        with self._lock:
            super().release()
            self._state = StackState.STOPPED

    @property
    def running(self) -> bool:
        return self._state is StackState.RUNNING

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return super().__repr__() if self.running else f"<LocalStack endpoint={self.endpoint_name!r} {self._state}>"


def _signature() -> inspect.Signature:
    """LocalStack's signature, generated from StackConfig's fields (for help() and inspect)."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for index, item in enumerate(fields(StackConfig)):
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if index < 5 else inspect.Parameter.KEYWORD_ONLY
        params.append(inspect.Parameter(item.name, kind, default=item.default, annotation=item.type))
    params.append(inspect.Parameter("where", inspect.Parameter.KEYWORD_ONLY, default=CHILD, annotation="str"))
    return inspect.Signature(params)


LocalStack.__init__.__signature__ = _signature()  # type: ignore[attr-defined]
