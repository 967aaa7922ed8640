"""The queue consumer: runs queued invocations through the model, like the service's instances.

:meth:`Worker.step` does one pass at an injected clock reading, so tests drive time exactly:

0. fail what a deleted endpoint still had queued or running (failure object, error notification),
   and the requests an inference router gave up on (``routing.py`` decides, the worker writes);
1. collect finished model calls → output object (carrying the model's content type) or failure
   object, and the SNS success/error notification;
2. time out calls running longer than InvocationTimeoutSeconds → failure object; the model's
   late result is discarded, never written;
3. expire requests still queued after RequestTTLSeconds → failure object saying "expired";
4. start queued requests in FIFO order while fewer than the endpoint's concurrency
   (MaxConcurrentInvocationsPerInstance x instance count) are running — none while its container
   is unreachable (it went away mid-request; the lifecycle re-pings it).

A request sent through an inference router carries its routing target's topics (``Invocation.route``):
its notifications go there, not to the destination endpoint's.

Model calls run on their own daemon threads, so a crashing or hanging model cannot stop the
runtime. The stack's thread just calls ``step()`` and waits a few milliseconds (or until the
backend signals a change).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...aws.s3uri import S3Uri
from ...contract.notifications import (
    FAILURE_CONTENT_TYPE,
    MAX_EMBEDDED_RESPONSE,
    SUCCESS_TOPIC_INCLUDE,
    InferenceResult,
    iso,
)
from .hosting import ContainerUnreachable, ModelInvocationError
from .models import Backend, Endpoint, Invocation, Retired, RuntimeStatus

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where inputs are read and results go (S3 + SNS in the stack)."""

    def read(self, uri: str) -> bytes: ...

    def write(self, uri: str, body: bytes, content_type: str) -> None: ...

    def publish(self, topic_arn: str, message: str) -> None: ...


class BotoSink:
    """S3 and SNS through boto3 clients pointed at the moto server."""

    def __init__(self, s3: Any, sns: Any):
        self.s3, self.sns = s3, sns

    def read(self, uri: str) -> bytes:
        location = S3Uri.parse(uri)
        return self.s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()

    def write(self, uri: str, body: bytes, content_type: str) -> None:
        location = S3Uri.parse(uri)
        self.s3.put_object(Bucket=location.bucket, Key=location.key, Body=body, ContentType=content_type)

    def publish(self, topic_arn: str, message: str) -> None:
        self.sns.publish(TopicArn=topic_arn, Message=message)


class InputError(Exception):
    """The input object could not be read."""


@dataclass
class _Job:
    invocation: Invocation
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[bytes, str] | None = None
    error: BaseException | None = None
    instance: int = 0  # which emulated instance runs it (names the CloudWatch Logs stream)


def failure_reason(error: BaseException) -> str:
    """AWS-like failure text naming what the model raised."""
    if isinstance(error, InputError):
        return str(error)
    if isinstance(error, ContainerUnreachable):
        return f"ModelError: {error}"
    if isinstance(error, ModelInvocationError):
        side = "client" if 400 <= error.status < 500 else "server"
        return f'ModelError: Received {side} error ({error.status}) from model with message "{error.message}".'
    return f'ModelError: Received server error (500) from model with message "{type(error).__name__}: {error}".'


def notification(inv: Invocation, region: str, succeeded: bool, body: bytes | None = None) -> dict[str, Any]:
    """The SNS message SageMaker publishes when an async inference ends (``body``: the response,
    embedded when the endpoint's IncludeInferenceResponseIn asks for it)."""
    request = {"contentType": inv.content_type, "endpointName": inv.endpoint_name or None,
               "inputLocation": inv.input_location, "accept": inv.accept,
               "customAttributes": inv.custom_attributes}
    if inv.route is not None:  # which router and target it went through (endpointName: where it ran or waited)
        request.update(inferenceRouterName=inv.route.router_name, routingTargetName=inv.route.target_name)
    return InferenceResult(
        inference_id=inv.inference_id, succeeded=succeeded, output_location=inv.output_location,
        failure_location=inv.failure_location, failure_reason=inv.failure_reason,
        event_time=iso(inv.finished_at or time.time()), received_time=iso(inv.received_at),
        content_type=inv.output_content_type, body=body, endpoint_name=inv.endpoint_name, region=region,
        request=request).to_message()


class Worker:
    """Consumes the backend's queues. ``clock`` is the emulated clock used for TTL/timeouts."""

    def __init__(self, backend: Backend, sink: Sink, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, time_scale: float = 1.0, model_logs: Any = None):
        self.backend, self.sink, self.clock, self.wall = backend, sink, clock, wall
        self.time_scale = time_scale
        self.model_logs = model_logs  # a modellogs.CloudWatchLogs: the model's lines go there
        self._jobs: dict[int, _Job] = {}  # by Invocation.seq: ids may repeat (each request runs)
        self._abandoned: list[_Job] = []
        self._step_lock = threading.Lock()
        self._closing = threading.Event()
        self.notifications_sent = 0
        self.notification_errors = 0

    # -- one pass ------------------------------------------------------------------------------
    def step(self, now: float | None = None) -> int:
        """Advance every endpoint's queue to clock reading ``now``; returns how many changes."""
        now = self.clock() if now is None else now
        changes = 0
        with self._step_lock:
            self._reap_abandoned()
            for retired in self.backend.take_retired():
                changes += self._fail_retired(retired)
            for inv, status, reason in self.backend.take_given_up():
                self._fail(None, inv, status, reason)
                changes += 1
            for endpoint in self.backend.endpoints():
                changes += self._step_endpoint(endpoint, now)
        return changes

    def _step_endpoint(self, endpoint: Endpoint, now: float) -> int:
        changes = 0
        for inv in self.backend.running(endpoint.name):
            job = self._jobs[inv.seq]
            if job.done.is_set():
                self._complete(endpoint, job)
                changes += 1
            elif inv.started_clock is not None and now - inv.started_clock >= inv.timeout_seconds:
                self._time_out(endpoint, job)
                changes += 1
        for inv in self.backend.expire_due(endpoint.name, now):
            self._fail(endpoint, inv, RuntimeStatus.EXPIRED,
                       f"RequestExpired: The request expired: it was still queued after "
                       f"RequestTTLSeconds ({inv.ttl_seconds} s), so it was never processed.")
            changes += 1
        while (endpoint.healthy and len(self.backend.running(endpoint.name)) < endpoint.concurrency
               and not self._closing.is_set()):
            queued = self.backend.pop_next(endpoint.name)
            if queued is None:
                break
            self._start(endpoint, queued, now)
            changes += 1
        return changes

    def _start(self, endpoint: Endpoint, inv: Invocation, now: float) -> None:
        self.backend.mark_running(inv, now_clock=now, now_wall=self.wall())
        per_instance = max(1, endpoint.concurrency // max(1, endpoint.instances))
        job = _Job(inv, instance=(len(self.backend.running(endpoint.name)) - 1) // per_instance)
        self._jobs[inv.seq] = job
        job.thread = threading.Thread(target=self._execute, args=(endpoint, job), daemon=True,
                                      name=f"sm-async-nb-model-{inv.inference_id[:12]}")
        job.thread.start()

    def _execute(self, endpoint: Endpoint, job: _Job) -> None:
        inv = job.invocation
        try:
            if inv.body is not None:
                body = inv.body
            else:
                try:
                    body = self.sink.read(inv.input_location or "")
                except Exception as exc:
                    raise InputError(f"ClientError: Failed to download the input from "
                                     f"{inv.input_location}: {exc}") from exc
            if endpoint.delay > 0:
                self._closing.wait(endpoint.delay)
            job.result = self._invoke(endpoint, job, body)
        except BaseException as exc:
            log.info("inference %s failed: %s: %s", inv.inference_id, type(exc).__name__, exc)
            job.error = exc
        finally:
            job.done.set()
            self.backend.notify()

    def _invoke(self, endpoint: Endpoint, job: _Job, body: bytes) -> tuple[bytes, str]:
        """The model call; with ``model_logs``, what it prints, logs or raises goes to CloudWatch Logs."""
        inv = job.invocation
        timeout = inv.timeout_seconds / self.time_scale + 1.0
        args = (body, inv.content_type, inv.accept, inv.custom_attributes)
        if self.model_logs is None:
            return endpoint.model.invoke(*args, timeout=timeout)
        from .modellogs import capture, error_lines

        lines: list[str] = []
        try:
            with capture() as lines:
                return endpoint.model.invoke(*args, timeout=timeout)
        except BaseException as exc:
            lines += error_lines(exc)
            raise
        finally:
            self.model_logs.send(endpoint.name, inv.inference_id, lines, instance=max(0, job.instance))

    def _fail_retired(self, retired: Retired) -> int:
        """Fail what a deleted endpoint still had queued or running (a running call's result, if it
        ever comes, is discarded)."""
        endpoint = retired.endpoint
        for inv in retired.queued:
            self._fail(endpoint, inv, RuntimeStatus.FAILED,
                       f"EndpointDeleted: The endpoint {endpoint.name} was deleted before this request was "
                       "processed; it was never sent to the model.")
        for inv in retired.running:
            job = self._jobs.pop(inv.seq, None)
            if job is not None:
                self._abandoned.append(job)
            self._fail(endpoint, inv, RuntimeStatus.FAILED,
                       f"EndpointDeleted: The endpoint {endpoint.name} was deleted while this request ran; "
                       "its result was discarded.")
        return len(retired.queued) + len(retired.running)

    def _complete(self, endpoint: Endpoint, job: _Job) -> None:
        inv = job.invocation
        del self._jobs[inv.seq]
        if isinstance(job.error, ContainerUnreachable):
            endpoint.healthy = False  # no request starts until its /ping answers 200 again (lifecycle.py)
            log.warning("endpoint %s: %s; waiting for GET /ping to answer 200", endpoint.name, job.error)
        if job.error is not None or job.result is None:
            self._fail(endpoint, inv, RuntimeStatus.FAILED, failure_reason(job.error or RuntimeError("no result")))
            return
        body, content_type = job.result
        try:
            self.sink.write(inv.output_location, body, content_type)
        except Exception as exc:
            self._fail(endpoint, inv, RuntimeStatus.FAILED, f"InternalFailure: Could not write the output to "
                                              f"{inv.output_location}: {exc}")
            return
        inv.output_content_type, inv.output_size = content_type, len(body)
        self.backend.mark_finished(inv, RuntimeStatus.COMPLETED, now_wall=self.wall())
        if inv.route is not None:
            self._notify(inv.route.success_topic, inv, succeeded=True)
            return
        embed = SUCCESS_TOPIC_INCLUDE in endpoint.include_response_in and len(body) <= MAX_EMBEDDED_RESPONSE
        self._notify(endpoint.success_topic, inv, succeeded=True, body=body if embed else None)

    def _time_out(self, endpoint: Endpoint, job: _Job) -> None:
        inv = job.invocation
        del self._jobs[inv.seq]
        self._abandoned.append(job)  # its result, if it ever comes, is discarded
        self._fail(endpoint, inv, RuntimeStatus.TIMED_OUT,
                   f"InvocationTimeout: The model did not respond within InvocationTimeoutSeconds "
                   f"({inv.timeout_seconds} s); the invocation was stopped and its result discarded.")

    def _reap_abandoned(self) -> None:
        for job in [j for j in self._abandoned if j.done.is_set()]:
            self._abandoned.remove(job)
            job.invocation.late_result_discarded = True

    def _fail(self, endpoint: Endpoint | None, inv: Invocation, status: RuntimeStatus, reason: str) -> None:
        """The failure object at the request's FailureLocation and the error notification (to its routing
        target's topic when a router sent it, else to ``endpoint``'s)."""
        try:
            self.sink.write(inv.failure_location, reason.encode("utf-8"), FAILURE_CONTENT_TYPE)
        except Exception:
            log.exception("could not write the failure object %s", inv.failure_location)
        self.backend.mark_finished(inv, status, now_wall=self.wall(), reason=reason)
        topic = inv.route.error_topic if inv.route is not None else endpoint.error_topic if endpoint else None
        self._notify(topic, inv, succeeded=False)

    def _notify(self, topic: str | None, inv: Invocation, *, succeeded: bool, body: bytes | None = None) -> None:
        if not topic:
            return
        try:
            self.sink.publish(topic, json.dumps(notification(inv, self.backend.region, succeeded, body)))
            self.notifications_sent += 1
        except Exception:
            self.notification_errors += 1
            log.exception("could not publish the notification for %s to %s", inv.inference_id, topic)

    # -- lifecycle -----------------------------------------------------------------------------
    def run(self, stop: threading.Event, interval: float = 0.02) -> None:
        """Thread body: step until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("local runtime worker step failed")
            with self.backend.changed:
                self.backend.changed.wait(interval)

    def wait_done(self, inference_id: str, timeout: float) -> bool:
        """Wait until the model call for ``inference_id`` has returned (for deterministic tests)."""
        with self._step_lock:
            jobs = [j for j in list(self._jobs.values()) + self._abandoned
                    if j.invocation.inference_id == inference_id]
        return all(job.done.wait(timeout) for job in jobs)

    def threads(self) -> list[threading.Thread]:
        with self._step_lock:
            jobs = list(self._jobs.values()) + list(self._abandoned)
        return [job.thread for job in jobs if job.thread is not None and job.thread.is_alive()]

    def wait_for_models(self, timeout: float) -> bool:
        """Join every model thread (running or abandoned); True when none is left."""
        deadline = time.monotonic() + timeout
        for thread in self.threads():
            thread.join(max(0.0, deadline - time.monotonic()))
        return not self.threads()

    def close(self, timeout: float = 2.0) -> bool:
        """Stop starting work, cut model delays short and wait briefly for model threads."""
        self._closing.set()
        return self.wait_for_models(timeout)
