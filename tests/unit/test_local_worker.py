"""Worker semantics with an injected clock: ``step(now)`` decides, tests never sleep.

Model calls are gated by events the test releases, and their completion is awaited on the
worker's own done events, so every outcome is deterministic.
"""

from __future__ import annotations

import json
import threading

import pytest

from sm_async_nb.contract.locations import result_locations
from sm_async_nb.local.service.models import Backend, Endpoint, InvokeArgs, RuntimeStatus
from sm_async_nb.local.service.worker import Worker

QUEUED, RUNNING, COMPLETED, FAILED, EXPIRED, TIMED_OUT = (RuntimeStatus.QUEUED, RuntimeStatus.RUNNING,
    RuntimeStatus.COMPLETED, RuntimeStatus.FAILED, RuntimeStatus.EXPIRED, RuntimeStatus.TIMED_OUT)


class MemorySink:
    """In-memory twin of the S3/SNS sink (the real one is exercised end to end)."""

    def __init__(self):
        self.inputs: dict[str, bytes] = {}
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.published: list[tuple[str, dict]] = []

    def read(self, uri):
        return self.inputs[uri]

    def write(self, uri, body, content_type):
        self.objects[uri] = (body, content_type)

    def publish(self, topic_arn, message):
        self.published.append((topic_arn, json.loads(message)))


class GatedModel:
    """Each call blocks until the test releases its body; bodies starting with b'fail' raise."""

    def __init__(self):
        self.gates: dict[bytes, threading.Event] = {}
        self.lock = threading.Lock()

    def gate(self, body: bytes) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(body, threading.Event())

    def load(self):
        pass

    def close(self):
        pass

    def invoke(self, body, content_type, accept, custom_attributes=None, timeout=None):
        assert self.gate(body).wait(10), f"test never released {body!r}"
        if body.startswith(b"fail"):
            raise ValueError(f"bad row in {body.decode()}")
        return body.upper(), "text/x-upper"


@pytest.fixture
def world():
    backend = Backend()
    sink = MemorySink()
    model = GatedModel()
    endpoint = Endpoint(name="ep", model=model, output_path="s3://out-bucket/out/", failure_path="s3://out-bucket/fail/",
                        success_topic="arn:aws:sns:us-east-1:123456789012:ok",
                        error_topic="arn:aws:sns:us-east-1:123456789012:err", concurrency=2)
    backend.register(endpoint)
    worker = Worker(backend, sink, clock=lambda: pytest.fail("tests pass now explicitly"), wall=lambda: 1_700_000_000.0)
    yield backend, sink, model, worker, endpoint
    for gate in model.gates.values():
        gate.set()
    worker.close(timeout=5)


def submit(backend, body: bytes, at: float, **kw) -> str:
    inv = backend.submit(InvokeArgs(endpoint_name="ep", body=body, content_type="text/plain", inference_id=body.decode(),
                                    **kw), now_clock=at, now_wall=1_700_000_000.0 + at)
    return inv.inference_id


def finish(worker, model, body: bytes) -> None:
    model.gate(body).set()
    assert worker.wait_done(body.decode(), 10)


def status(backend, inference_id):
    return next(r["status"] for r in backend.records() if r["inference_id"] == inference_id)


def test_a_repeated_inference_id_is_a_second_invocation_that_runs_too(world):
    backend, sink, model, worker, _ = world
    submit(backend, b"dup", at=0)
    submit(backend, b"dup", at=0)  # AWS does not deduplicate by id: each request is an invocation
    worker.step(0)
    assert [inv.inference_id for inv in backend.running("ep")] == ["dup", "dup"]  # both run, neither replaces
    finish(worker, model, b"dup")
    worker.step(1)
    assert [r["status"] for r in backend.records() if r["inference_id"] == "dup"] == [COMPLETED, COMPLETED]
    assert backend.endpoint_stats()["ep"]["requests_received"] == 2


def test_fifo_order_and_concurrency_limit(world):
    backend, sink, model, worker, _ = world
    ids = [submit(backend, f"req{i}".encode(), at=0) for i in range(5)]
    worker.step(0)
    assert [inv.inference_id for inv in backend.running("ep")] == ids[:2]
    assert [inv.inference_id for inv in backend.queued("ep")] == ids[2:]
    worker.step(1)  # nothing finished: still two in flight
    assert len(backend.running("ep")) == 2
    finish(worker, model, b"req1")  # the second finishes first
    worker.step(2)
    assert status(backend, "req1") == COMPLETED
    assert sorted(inv.inference_id for inv in backend.running("ep")) == ["req0", "req2"]
    for body in (b"req0", b"req2", b"req3"):
        finish(worker, model, body)
        worker.step(3)
    finish(worker, model, b"req4")
    worker.step(4)
    assert [status(backend, i) for i in ids] == [COMPLETED] * 5
    starts = [r["inference_id"] for r in sorted(backend.records(), key=lambda r: (r["started_clock"], r["inference_id"]))]
    assert starts == ids
    assert backend.max_in_flight["ep"] == 2


def test_output_object_carries_the_models_content_type_and_notification(world):
    backend, sink, model, worker, endpoint = world
    submit(backend, b"hello", at=0, accept="text/x-upper", custom_attributes="a=1")
    worker.step(0)
    finish(worker, model, b"hello")
    worker.step(1)
    output, _ = result_locations(endpoint.output_path, endpoint.failure_path, "hello")
    assert sink.objects[output] == (b"HELLO", "text/x-upper")
    [(topic, message)] = sink.published
    assert topic == endpoint.success_topic
    assert message["invocationStatus"] == "Completed" and message["inferenceId"] == "hello"
    assert message["responseParameters"] == {"contentType": "text/x-upper", "outputLocation": output}
    assert message["requestParameters"] == {"contentType": "text/plain", "endpointName": "ep",
                                            "accept": "text/x-upper", "customAttributes": "a=1"}
    assert message["receivedTime"] == "2023-11-14T22:13:20.000Z"
    assert (message["eventVersion"], message["eventSource"], message["eventName"]) == (
        "1.0", "aws:sagemaker", "InferenceResult")


def test_model_error_becomes_failure_object_and_error_notification(world):
    backend, sink, model, worker, endpoint = world
    submit(backend, b"fail-1", at=0)
    worker.step(0)
    finish(worker, model, b"fail-1")
    worker.step(1)
    output, failure = result_locations(endpoint.output_path, endpoint.failure_path, "fail-1")
    assert output not in sink.objects
    text = sink.objects[failure][0].decode()
    assert "ValueError: bad row in fail-1" in text and "expired" not in text
    assert status(backend, "fail-1") == FAILED
    [(topic, message)] = sink.published
    assert topic == endpoint.error_topic and message["invocationStatus"] == "Failed"
    assert message["failureReason"] == text


def test_queued_request_expires_after_its_ttl(world):
    backend, sink, model, worker, endpoint = world
    endpoint.concurrency = 1
    submit(backend, b"busy", at=0)
    submit(backend, b"waits", at=0, request_ttl_seconds=60)
    submit(backend, b"later", at=30, request_ttl_seconds=60)
    worker.step(0)
    worker.step(59.99)
    assert status(backend, "waits") == QUEUED
    worker.step(60)
    assert status(backend, "waits") == EXPIRED and status(backend, "later") == QUEUED
    text = sink.objects[result_locations(endpoint.output_path, endpoint.failure_path, "waits")[1]][0].decode()
    assert "expired" in text and "RequestTTLSeconds (60 s)" in text
    worker.step(90)
    assert status(backend, "later") == EXPIRED
    assert all(r["started_at"] is None for r in backend.records() if r["status"] == EXPIRED)
    finish(worker, model, b"busy")
    worker.step(91)
    assert status(backend, "busy") == COMPLETED  # default TTL (6 h) and timeout (15 min) not reached
    assert [m["invocationStatus"] for _, m in sink.published] == ["Failed", "Failed", "Completed"]


def test_running_request_times_out_and_its_late_result_is_never_written(world):
    backend, sink, model, worker, endpoint = world
    endpoint.concurrency = 1
    submit(backend, b"slow", at=0, invocation_timeout_seconds=5)
    submit(backend, b"next", at=0)
    worker.step(0)
    worker.step(4.99)
    assert status(backend, "slow") == RUNNING
    worker.step(5)
    assert status(backend, "slow") == TIMED_OUT
    output, failure = result_locations(endpoint.output_path, endpoint.failure_path, "slow")
    text = sink.objects[failure][0].decode()
    assert "InvocationTimeoutSeconds (5 s)" in text and "expired" not in text
    assert [inv.inference_id for inv in backend.running("ep")] == ["next"]  # the slot was freed
    finish(worker, model, b"slow")  # the model answers late
    worker.step(6)
    assert output not in sink.objects
    record = next(r for r in backend.records() if r["inference_id"] == "slow")
    assert record["late_result_discarded"] and record["status"] == TIMED_OUT


def test_unreadable_input_fails_with_the_location(world):
    backend, sink, model, worker, endpoint = world
    backend.submit(InvokeArgs(endpoint_name="ep", input_location="s3://in-bucket/missing.csv", inference_id="m"),
                   now_clock=0, now_wall=0)
    worker.step(0)
    assert worker.wait_done("m", 10)
    worker.step(1)
    text = sink.objects[result_locations(endpoint.output_path, endpoint.failure_path, "m")[1]][0].decode()
    assert "Failed to download the input from s3://in-bucket/missing.csv" in text


@pytest.mark.parametrize("extension,filename,output,failure", [
    (None, None, "s3://bkt/out/ID.out", "s3://bkt/fail/ID-error.out"),
    ("x/y", None, "s3://bkt/out/x/y/ID.out", "s3://bkt/fail/x/y/ID-error.out"),
    ("/x/", "r.csv", "s3://bkt/out/x/r.csv", "s3://bkt/fail/x/ID-error.out"),
    (None, "r.csv", "s3://bkt/out/r.csv", "s3://bkt/fail/ID-error.out"),
])
def test_result_location_layout(extension, filename, output, failure):
    endpoint = Endpoint(name="e", model=None, output_path="s3://bkt/out", failure_path="s3://bkt/fail/")
    assert result_locations(endpoint.output_path, endpoint.failure_path, "ID", extension, filename) == (output, failure)


def test_failure_path_defaults_to_output_path():
    endpoint = Endpoint(name="e", model=None, output_path="s3://bkt/out/")
    assert result_locations(endpoint.output_path, endpoint.failure_path, "ID")[1] == "s3://bkt/out/ID-error.out"


def test_a_deleted_endpoint_fails_what_it_had_queued_and_running(world):
    from sm_async_nb.local.service.models import EndpointNotFound

    backend, sink, model, worker, endpoint = world
    ids = [submit(backend, f"req{i}".encode(), at=0) for i in range(4)]
    worker.step(0)  # two running, two queued
    backend.retire("ep")
    with pytest.raises(EndpointNotFound, match="Endpoint ep of account 123456789012 not found."):
        submit(backend, b"late", at=1)
    assert worker.step(1) == 4
    assert [status(backend, i) for i in ids] == [FAILED] * 4
    reasons = {r["inference_id"]: r["failure_reason"] for r in backend.records()}
    assert all(reasons[i].startswith("EndpointDeleted: The endpoint ep was deleted") for i in ids)
    assert "while this request ran" in reasons["req0"] and "never sent to the model" in reasons["req3"]
    for inference_id in ids:
        _, failure = result_locations(endpoint.output_path, endpoint.failure_path, inference_id)
        assert sink.objects[failure][0].decode() == reasons[inference_id]
    assert [(topic, m["invocationStatus"]) for topic, m in sink.published] == [(endpoint.error_topic, "Failed")] * 4
    finish(worker, model, b"req0")  # a late result of a deleted endpoint is discarded, never written
    worker.step(2)
    output, _ = result_locations(endpoint.output_path, endpoint.failure_path, "req0")
    assert output not in sink.objects


def test_a_container_that_went_away_takes_no_request_until_healthy_again(world):
    from sm_async_nb.local.service.hosting import ContainerUnreachable

    backend, sink, model, worker, endpoint = world
    original = model.invoke

    def dies(body, *args, **kwargs):
        if body == b"die":
            raise ContainerUnreachable("http://127.0.0.1:1", ConnectionResetError("Connection reset by peer"))
        return original(body, *args, **kwargs)

    model.invoke = dies
    submit(backend, b"die", at=0)
    worker.step(0)
    assert worker.wait_done("die", 10)
    submit(backend, b"after", at=1)
    worker.step(1)
    assert status(backend, "die") == FAILED and not endpoint.healthy
    assert [r["failure_reason"] for r in backend.records() if r["inference_id"] == "die"] == [
        "ModelError: the model container at http://127.0.0.1:1 went away while handling the request "
        "(ConnectionResetError: Connection reset by peer); did it crash?"]
    worker.step(2)
    assert status(backend, "after") == QUEUED  # waits, instead of failing too
    endpoint.healthy = True  # what the lifecycle does once /ping answers 200
    worker.step(3)
    finish(worker, model, b"after")
    worker.step(4)
    assert status(backend, "after") == COMPLETED
