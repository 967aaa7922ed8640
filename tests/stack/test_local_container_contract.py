"""The container contract as the real runtime applies it (SPEC §17), with real serving containers in
processes of their own, mapped with ``image_map``: /ping must answer 200 before an instance takes
requests; /invocations carries the request's content type, accept and custom attributes; the
response's content type goes on the output; a container that dies mid-request fails that request
with a readable reason and the stack keeps serving the rest — and the request waiting behind it,
once the container answers /ping again."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from stackhelp import create_endpoint, s3_object, start_container, wait_for, wait_records

SLOW_START = "registry.local/slow-start:1"
NEVER_READY = "registry.local/never-ready:1"
ECHO = "registry.local/echo"  # a prefix: any tag of it


@pytest.fixture(scope="module")
def containers():
    started = {"never": start_container(ping_status=500), "echo": start_container()}
    yield started
    for process, _ in started.values():
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def stack(containers):
    from sm_async_nb.local import LocalStack

    image_map = {NEVER_READY: containers["never"][1], ECHO: containers["echo"][1]}
    # create_seconds > 0: CreateEndpoint returns at once and DescribeEndpoint shows Creating; time_scale
    # makes a 60 s ContainerStartupHealthCheckTimeoutInSeconds two real seconds.
    with LocalStack(image_map=image_map, create_seconds=0.1, time_scale=30) as stack:
        yield stack


def make(stack, name: str, image: str, **kwargs) -> dict:
    return create_endpoint(stack.boto3_client("sagemaker"), name, {"PrimaryContainer": {"Image": image}},
                           output=f"s3://{stack.input_bucket}/contract/{name}/", **kwargs)


def invoke(stack, name: str, body: bytes, **kwargs) -> dict:
    key = f"contract/inputs/{uuid.uuid4().hex}"
    stack.boto3_client("s3").put_object(Bucket=stack.input_bucket, Key=key, Body=body)
    return stack.boto3_client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=name, InputLocation=f"s3://{stack.input_bucket}/{key}", **kwargs)


def test_an_endpoint_is_in_service_only_once_ping_answers_200(stack):
    process, url = start_container(ready_after=3.0)  # /ping answers 503 for its first 3 s
    ready_at = time.monotonic() + 3.0
    try:
        stack.call("map_images", image_map=[[SLOW_START, url]])
        sm = stack.boto3_client("sagemaker")
        assert make(stack, "slow-start", SLOW_START, wait=False,  # 600 emulated seconds: 20 real ones
                    variant={"ContainerStartupHealthCheckTimeoutInSeconds": 600})["EndpointStatus"] == "Creating"
        while time.monotonic() < ready_at - 0.5:
            assert sm.describe_endpoint(EndpointName="slow-start")["EndpointStatus"] == "Creating"
            time.sleep(0.1)
        sm.get_waiter("endpoint_in_service").wait(EndpointName="slow-start", WaiterConfig={"Delay": 0.2})
        assert time.monotonic() >= ready_at - 0.2
    finally:
        process.kill()
        process.wait()


def test_a_container_whose_ping_never_answers_200_leaves_the_endpoint_failed(stack):
    described = make(stack, "never-ready", NEVER_READY, variant={"ContainerStartupHealthCheckTimeoutInSeconds": 60})
    assert described["EndpointStatus"] == "Failed"
    assert "answered GET /ping with 500 within 60 s" in described["FailureReason"]
    assert "\n" not in described["FailureReason"]


def test_invocations_get_the_requests_headers_and_the_output_its_content_type(stack):
    make(stack, "echo", f"{ECHO}:2.0")
    answer = invoke(stack, "echo", b"1,2\n", ContentType="text/csv", Accept="application/vnd.echo+json",
                    CustomAttributes="trace=abc-123")
    body, content_type = wait_for(lambda: s3_object(stack.boto3_client("s3"), answer["OutputLocation"]))
    assert content_type == "application/vnd.echo+json"
    assert json.loads(body) == {"content_type": "text/csv", "accept": "application/vnd.echo+json",
                                "custom_attributes": "trace=abc-123", "body": "1,2\n"}


def test_a_container_that_dies_mid_request_fails_that_request_and_the_stack_keeps_serving(stack):
    process, url = start_container()
    port = int(url.rsplit(":", 1)[1])
    stack.call("map_images", image_map=[["registry.local/fragile:1", url]])
    make(stack, "fragile", "registry.local/fragile:1", concurrency=1)
    died = invoke(stack, "fragile", b"die", ContentType="text/plain")["InferenceId"]
    records = wait_records(stack, lambda rs: any(r["inference_id"] == died and r["status"] == "Failed" for r in rs),
                           endpoint_name="fragile")
    reason = next(r["failure_reason"] for r in records if r["inference_id"] == died)
    assert reason.startswith(f"ModelError: the model container at {url} went away while handling the request")
    assert reason.endswith("did it crash?")
    process.wait(10)

    waiting = invoke(stack, "fragile", b"after the crash", ContentType="text/plain")
    other = invoke(stack, stack.endpoint_name, b"5.1,3.5,1.4,0.2\n", ContentType="text/csv")  # another endpoint
    assert wait_for(lambda: s3_object(stack.boto3_client("s3"), other["OutputLocation"]))
    status = {r["inference_id"]: r["status"] for r in stack.records("fragile")}
    assert status[waiting["InferenceId"]] == "Queued"  # no instance takes it while /ping does not answer

    restarted, _ = start_container(port=port)  # the container comes back on its port
    try:
        body, _ = wait_for(lambda: s3_object(stack.boto3_client("s3"), waiting["OutputLocation"]), timeout=30)
        assert json.loads(body)["body"] == "after the crash"
    finally:
        restarted.kill()
        restarted.wait()
