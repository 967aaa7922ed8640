"""What every scenario needs: a stack per phase, held endpoints, clients, timing helpers.

Each (scenario, latency) phase gets a fresh ``sma.LocalStack``, whose engine runs in a child
process of its own (the default placement), so it does not compete with the client being
measured for this process's GIL, and nothing one phase leaves queued costs CPU in the next. Its
default endpoint runs the echo model file (``models/echo.py``) in the engine's process.
Submission scenarios use a *held* endpoint (its model, a callable served from this process,
waits on a gate), so the emulator's own work — running the model and writing outputs, which AWS
does elsewhere — does not compete with the client for this machine's cores.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.config import Config

from sm_async_nb import AsyncInferenceClient, LocalStack

from .config import Sizes

ECHO = "bench-echo"
ECHO_MODEL = Path(__file__).resolve().parent / "models" / "echo.py"
HELD = "bench-held"
__all__ = ["ECHO", "HELD", "Bench", "Phase", "csv_payloads", "interleaved", "Sampled", "timed"]


def csv_payloads(count: int) -> list[str]:
    """Small CSV payloads, one row of four features each."""
    return [f"{i % 7}.{i % 10},{i % 5}.5,{i % 3}.1,0.{i % 9}\n" for i in range(count)]


def boto_config(workers: int) -> Config:
    """The retry policy and connection pool sm_async_nb's clients use, for the baselines."""
    return Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=max(10, workers))


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(contenders: dict[str, Callable[[], Any]],
                repeats: int) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Median time of each contender over ``repeats`` rounds (and every round's time), run in
    rotating order so that load from elsewhere on the machine hits all of them alike. A contender
    that returns a float timed itself (its set-up is not counted)."""
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            started = time.perf_counter()
            answer = contenders[name]()
            elapsed = time.perf_counter() - started
            times[name].append(answer if isinstance(answer, float) else elapsed)
    return {name: statistics.median(values) for name, values in times.items()}, times


class Sampled:
    """A sequential baseline, too slow to run on every item each round: each call runs the next
    chunk of ``sample`` items (split over ``rounds`` calls), and :meth:`scale` turns one chunk's
    time into the time for all items (requests one after another scale linearly)."""

    def __init__(self, fn: Callable[[list[Any]], Any], items: list[Any], sample: int, rounds: int):
        self.size = max(1, min(sample, len(items)) // max(1, rounds))
        self.fn, self.items, self.calls = fn, items, 0

    def __call__(self) -> None:
        start = (self.calls * self.size) % max(1, len(self.items) - self.size + 1)
        self.calls += 1
        self.fn(self.items[start:start + self.size])

    @property
    def timed_items(self) -> int:
        return self.size * self.calls

    def scale(self, chunk_seconds: float) -> float:
        return chunk_seconds * len(self.items) / self.size


class Gate:
    """A model that does not finish until :meth:`release` (keeps invocations pending)."""

    def __init__(self) -> None:
        self.__name__ = "held_echo"
        self._open = threading.Event()

    def __call__(self, body: bytes, content_type: str | None) -> tuple[bytes, str]:
        self._open.wait()
        return body, "text/csv"

    def release(self) -> None:
        self._open.set()


@dataclass
class Phase:
    """One running stack plus what the scenario made on it."""

    stack: LocalStack
    workdir: Path
    workers: int
    latency_ms: float = 0
    clients: list[AsyncInferenceClient] = field(default_factory=list)
    gates: dict[str, Gate] = field(default_factory=dict)

    def held_endpoint(self, name: str = HELD, concurrency: int = 8) -> str:
        """An endpoint whose requests stay pending until :meth:`release`."""
        self.gates[name] = Gate()
        self.stack.add_endpoint(name, model=self.gates[name], concurrency=concurrency)
        return name

    def release(self, name: str) -> None:
        """Let the held endpoint's model finish."""
        self.gates[name].release()

    def set_latency(self, latency_ms: float) -> None:
        """Emulate ``latency_ms`` per request from now on."""
        self.latency_ms = latency_ms
        self.stack.configure_faults(latency_ms=latency_ms)

    @contextlib.contextmanager
    def without_latency(self) -> Iterator[None]:
        """Set-up work (not measured) runs without emulated latency."""
        self.stack.configure_faults(latency_ms=0)
        try:
            yield
        finally:
            self.stack.configure_faults(latency_ms=self.latency_ms)

    def settle(self, client: AsyncInferenceClient, timeout: float = 600) -> None:
        """Wait until the stack has run everything queued and ``client`` has seen every result."""
        if not self.stack.wait_until_idle(timeout):
            raise TimeoutError(f"the local stack did not finish its queue within {timeout} s")
        while client.tracker.refresh():
            pass

    def client(self, **kwargs: Any) -> AsyncInferenceClient:
        """Our client on this stack, with a journal of its own in the phase's temp dir."""
        kwargs.setdefault("max_workers", self.workers)
        path = self.workdir / f"journal-{len(self.clients)}.sqlite3"
        self.clients.append(self.stack.client(journal_path=path, **kwargs))
        return self.clients[-1]

    def pending_behind_held(self, count: int) -> tuple[str, AsyncInferenceClient]:
        """A held endpoint with ``count`` invocations waiting behind it (sent inline, at no
        emulated latency, so setting up is quick), and the client that sent them."""
        held = self.held_endpoint()
        client = self.client()
        with self.without_latency():
            client.submit_many(held, csv_payloads(count), content_type="text/csv", inline=True)
        return held, client

    def boto3(self, service: str) -> Any:
        """A raw boto3 client with the same retry policy and pool size as ours."""
        return self.stack.boto3_client(service, config=boto_config(self.workers))

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for gate in self.gates.values():  # held model calls end before the stack stops
            gate.release()

    def raw_pool(self) -> ThreadPoolExecutor:
        """A plain thread pool as wide as our client's (use it as a context manager)."""
        return ThreadPoolExecutor(self.workers, thread_name_prefix="bench-raw")


class Bench:
    """The run: sizes, one temp dir for every journal and file, and stack phases."""

    def __init__(self, sizes: Sizes, workdir: Path):
        self.sizes = sizes
        self.workdir = workdir

    @contextlib.contextmanager
    def phase(self, latency_ms: float, concurrency: int = 8) -> Iterator[Phase]:
        """A fresh stack (default endpoint ``bench-echo``, echo model) emulating ``latency_ms``."""
        workdir = Path(tempfile.mkdtemp(prefix="phase-", dir=self.workdir))
        with LocalStack(model=str(ECHO_MODEL), endpoint_name=ECHO, concurrency=concurrency,
                        latency_ms=latency_ms) as stack:
            phase = Phase(stack, workdir, self.sizes.workers, latency_ms)
            try:
                yield phase
            finally:
                phase.close()


def per_latency(at: Callable[[Bench, int], Any]) -> Callable[[Bench], list[Any]]:
    """A scenario's ``run``: ``at(bench, latency)`` for each latency, rows in that order."""
    def run(bench: Bench) -> list[Any]:
        rows: list[Any] = []
        for latency in bench.sizes.latencies:
            made = at(bench, latency)
            rows += made if isinstance(made, list) else [made]
        return rows
    return run
