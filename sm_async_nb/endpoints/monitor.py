"""``EndpointMonitor``: one cached :class:`EndpointStatus` per endpoint, safe to ask from any thread.

A status is fetched (fetch.py: a fixed handful of requests per endpoint) only when the cached one
is older than ``max_age`` seconds, so the panel may ask every tracker tick and the cost stays per
endpoint per minute, never per invocation. The last ``HISTORY`` fetches of each endpoint are kept
as :class:`EndpointSample` points (instances, backlog) for the panel's activity charts: no request
is made for them. Concurrent askers of the same endpoint wait for one
fetch; other endpoints are not held up. :meth:`EndpointMonitor.status` never raises for AWS trouble:
it becomes a warning of the snapshot.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..context import Context
from ..records import InvocationRecord
from . import backlog, fetch, logs, rules
from .status import EndpointSample, EndpointStatus

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE_S = 60.0
HISTORY = 1440  # samples kept per endpoint: a day at one fetch a minute


class EndpointMonitor:
    """Endpoint status snapshots with a cache, and invocations' log lines, for one client's context."""

    def __init__(self, ctx: Context, *, clock: Callable[[], float] = time.time):
        self.ctx = ctx
        self.clock = clock
        self._cache: dict[str, EndpointStatus] = {}
        self._configs: dict[str, dict[str, Any]] = {}   # endpoint config name -> what we read (immutable)
        self._fetching: dict[str, threading.Lock] = {}
        self._history: dict[str, deque[EndpointSample]] = {}
        self._lock = threading.Lock()

    def cached(self, name: str) -> EndpointStatus | None:
        """The last snapshot of ``name``, however old, without any request (None: never fetched)."""
        with self._lock:
            return self._cache.get(name)

    def status(self, name: str, max_age: float = DEFAULT_MAX_AGE_S) -> EndpointStatus:
        """The snapshot of ``name``, from the cache when it is younger than ``max_age`` s (0: fetch now).

        Never raises for AWS or journal trouble: an unknown endpoint has ``exists=False``, anything
        else that went wrong is a warning of the snapshot (and logged).
        """
        with self._lock:
            fetching = self._fetching.setdefault(name, threading.Lock())
        with fetching:  # one fetch per endpoint at a time; the others then read its result
            hit = self.cached(name)
            if hit is not None and self.clock() - hit.fetched_at < max_age:
                return hit
            snapshot = self._fetch(name)
            with self._lock:
                self._cache[name] = snapshot
                if snapshot.exists:
                    self._history.setdefault(name, deque(maxlen=HISTORY)).append(EndpointSample.of(snapshot))
            return snapshot

    def history(self, name: str) -> list[EndpointSample]:
        """What the fetches of ``name`` saw, oldest first (the last HISTORY; no request is made)."""
        with self._lock:
            return list(self._history.get(name, ()))

    def forget(self, name: str | None = None) -> None:
        """Drop the cached snapshot of ``name`` (of every endpoint when None)."""
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)

    def logs(self, record: InvocationRecord, limit: int = 100) -> list[logs.LogLine]:
        """The CloudWatch Logs lines that carry ``record``'s inference id (at most ``limit``).

        Raises:
            AwsError: the logs could not be read (``kind="access_denied"``: logs:FilterLogEvents is missing).
        """
        return logs.fetch(self.ctx, record, limit)

    def log_messages(self, record: InvocationRecord, limit: int = 100) -> list[str]:
        """As :meth:`logs`, the messages only (what ``inv.logs()`` returns; the panel's ``row_logs``).

        Raises:
            AwsError: the logs could not be read.
        """
        return [line.message for line in logs.fetch(self.ctx, record, limit)]

    def _fetch(self, name: str) -> EndpointStatus:
        now = self.clock()
        reader = fetch.Reader(self.ctx, name)
        try:
            return self._read(reader, now)
        except fetch.NotFound:
            region = self.ctx.aws.region or "this region"
            return EndpointStatus(name=name, exists=False, fetched_at=now, warnings=[
                f"Endpoint {name!r} not found in {region}: check the name and region (aws sagemaker list-endpoints)."])
        except Exception as exc:  # a panel's background thread asks: never let it die of this
            log.exception("Reading the status of endpoint %s failed", name)
            return EndpointStatus(name=name, exists=None, fetched_at=now,
                                  warnings=[*reader.warnings, f"Could not read the status of endpoint {name!r}: "
                                                    f"{type(exc).__name__}: {exc}"])

    def _read(self, reader: fetch.Reader, now: float) -> EndpointStatus:
        name = reader.endpoint_name
        described = fetch.describe(reader, self._configs)
        metrics = fetch.metrics(reader, now)
        scaling = fetch.scaling(reader, described.variants)
        queue = backlog.read(self.ctx, name, now)
        rate = queue.rate_per_s
        snapshot = EndpointStatus(
            name=name, status=described.status, instance_type=described.instance_type,
            current_instances=described.current_instances, desired_instances=described.desired_instances,
            is_async=described.is_async, min_capacity=scaling.min_capacity, max_capacity=scaling.max_capacity,
            backlog=metrics.backlog, backlog_per_instance=metrics.backlog_per_instance,
            oldest_request_age_s=metrics.oldest_request_age_s,
            has_backlog_without_capacity=metrics.has_backlog_without_capacity,
            scales_from_zero=scaling.scales_from_zero, fetched_at=now, failure_reason=described.failure_reason,
            pending=queue.pending, drain_rate_per_min=None if rate is None else rate * 60, metrics_at=metrics.at,
            max_concurrent_per_instance=described.per_instance)
        return dataclasses.replace(snapshot, warnings=rules.rules(snapshot, queue, now) + reader.warnings)
