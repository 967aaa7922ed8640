"""Emulated network latency and transient faults, shared by moto's server and the runtime.

Why: realistic demos, benchmarks and retry tests need the slow, occasionally failing network a
notebook sees in front of AWS — without touching AWS. A fault is answered *before* the wrapped
application runs, so it never has a side effect (a retry cannot duplicate work).

The stack's own calls (set-up, the worker's S3 reads/writes and SNS publishes) carry
:data:`INTERNAL_MARKER` in their User-Agent and bypass both latency and faults: they emulate
traffic *inside* AWS, not the user's network.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

INTERNAL_MARKER = "sm-async-nb-local-internal"


@dataclass(frozen=True)
class Fault:
    """One kind of transient error: HTTP status and the AWS error code botocore will see."""

    status: int
    code: str
    message: str


def is_internal(environ: dict[str, Any]) -> bool:
    return INTERNAL_MARKER in environ.get("HTTP_USER_AGENT", "")


class Faults:
    """Thread-safe latency + fault-rate settings and counters (checked by ``StackConfig``).

    ``seed`` makes the sequence of injected faults reproducible for tests.
    """

    def __init__(self, latency_ms: float = 0, fault_rate: float = 0.0, seed: int | None = None):
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.latency_ms = 0.0
        self.fault_rate = 0.0
        self.configure(latency_ms=latency_ms, fault_rate=fault_rate)
        self.injected: Counter[str] = Counter()
        self.delayed = 0
        self.last_request = time.monotonic()  # of the last request from outside (idle timeout)

    def configure(self, latency_ms: float | None = None, fault_rate: float | None = None,
                  seed: int | None = None) -> None:
        with self._lock:
            if latency_ms is not None:
                self.latency_ms = float(latency_ms)
            if fault_rate is not None:
                self.fault_rate = float(fault_rate)
            if seed is not None:
                self._random.seed(seed)

    def delay(self) -> None:
        """Sleep for the emulated round-trip latency (outside the lock)."""
        with self._lock:
            latency = self.latency_ms
            if latency:
                self.delayed += 1
        if latency:
            time.sleep(latency / 1000.0)

    def pick(self, choices: Sequence[Fault]) -> Fault | None:
        """With probability ``fault_rate``, one of ``choices`` (and count it); else None."""
        with self._lock:
            if not choices or self.fault_rate <= 0 or self._random.random() >= self.fault_rate:
                return None
            fault = self._random.choice(list(choices))
            self.injected[fault.code] += 1
            return fault

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"latency_ms": self.latency_ms, "fault_rate": self.fault_rate,
                    "faults_injected": sum(self.injected.values()),
                    "faults_by_code": dict(self.injected), "requests_delayed": self.delayed}


def drain(environ: dict[str, Any]) -> None:
    """Read the request body so a keep-alive connection stays usable after a short answer."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    while length > 0 and stream is not None:
        chunk = stream.read(min(length, 65536))
        if not chunk:
            break
        length -= len(chunk)


Renderer = Callable[[Fault, dict[str, Any]], tuple[str, list[tuple[str, str]], bytes]]


class FaultMiddleware:
    """WSGI middleware: latency on every external request, faults on data-plane ones.

    ``classify(environ)`` returns the faults a request may get (empty = never faulted);
    ``render(fault, environ)`` builds the service-shaped error answer.
    """

    def __init__(self, app: Callable, faults: Faults,
                 classify: Callable[[dict[str, Any]], Sequence[Fault]], render: Renderer):
        self.app, self.faults, self.classify, self.render = app, faults, classify, render

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if not is_internal(environ):
            self.faults.last_request = time.monotonic()
            self.faults.delay()
            fault = self.faults.pick(self.classify(environ))
            if fault is not None:
                drain(environ)
                status, headers, body = self.render(fault, environ)
                start_response(status, headers + [("Content-Length", str(len(body)))])
                return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]
        return self.app(environ, start_response)
