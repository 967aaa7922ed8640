"""Latency and transient-fault emulation on the moto server and the runtime."""

from __future__ import annotations

import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from stackhelp import IRIS_CSV, run_client

S3_CODES = {"InternalError", "SlowDown", "ServiceUnavailable"}
RUNTIME_CODES = {"InternalFailure", "ServiceUnavailable", "ThrottlingException"}


@pytest.fixture
def faults(stack):
    """Lets a test change the emulation; always restores a clean network afterwards."""
    yield stack.configure_faults
    stack.configure_faults(latency_ms=0, fault_rate=0.0)


def mean_seconds(call, n: int = 4) -> float:
    call()  # warm the connection
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


def test_latency_is_added_to_every_request(stack, faults):
    s3, runtime = stack.boto3_client("s3"), stack.boto3_client("sagemaker-runtime")
    head = lambda: s3.head_bucket(Bucket=stack.input_bucket)  # noqa: E731
    invoke = lambda: runtime.invoke_endpoint_async(EndpointName="local-async", Body=b"5.1,3.5,1.4,0.2",  # noqa: E731
                                                   ContentType="text/csv")
    fast = mean_seconds(head), mean_seconds(invoke)
    faults(latency_ms=150)
    slow = mean_seconds(head), mean_seconds(invoke)
    assert slow[0] - fast[0] >= 0.13, (fast, slow)
    assert slow[1] - fast[1] >= 0.13, (fast, slow)
    assert stack.stats["moto"]["requests_delayed"] >= 5 and stack.stats["runtime"]["requests_delayed"] >= 5


def test_faults_happen_and_standard_retries_get_through(stack, faults, unique):
    before = stack.stats
    faults(fault_rate=0.4, seed=20240601)
    got = run_client(stack, """
        config = Config(retries={"mode": "standard", "max_attempts": 10})
        s3, rt = boto3.client("s3", config=config), boto3.client("sagemaker-runtime", config=config)
        bucket, prefix = s3_parts(os.environ["SM_ASYNC_NB_S3_INPUT_PATH"])
        retries = {"s3": 0, "runtime": 0}
        for i in range(8):
            key = f"{prefix}{ARGS}/{i}.csv"
            retries["s3"] += s3.put_object(Bucket=bucket, Key=key, Body=b"5.1,3.5,1.4,0.2")["ResponseMetadata"]["RetryAttempts"]
            answer = rt.invoke_endpoint_async(EndpointName="local-async", InputLocation=f"s3://{bucket}/{key}",
                                              ContentType="text/csv", InferenceId=f"{ARGS}-{i}")
            retries["runtime"] += answer["ResponseMetadata"]["RetryAttempts"]
        emit(retries)
    """, unique)
    after = stack.stats
    assert got["s3"] > 0 and got["runtime"] > 0
    assert after["moto"]["faults_injected"] > before["moto"]["faults_injected"]
    assert after["runtime"]["faults_injected"] > before["runtime"]["faults_injected"]
    assert set(after["moto"]["faults_by_code"]) <= S3_CODES
    assert set(after["runtime"]["faults_by_code"]) <= RUNTIME_CODES
    faults(fault_rate=0.0)
    assert stack.wait_until_idle(30)
    mine = [r for r in stack.records("local-async") if r["inference_id"].startswith(f"{unique}-")]
    assert len(mine) == 8  # one invocation per id: a faulted call never reached the queue
    assert all(r["status"] == "Completed" for r in mine)  # the worker's own S3 calls bypass faults


def test_faults_come_before_any_side_effect(stack, faults, unique):
    faults(fault_rate=1.0)
    no_retry = Config(retries={"mode": "standard", "max_attempts": 1})
    s3, runtime = stack.boto3_client("s3", config=no_retry), stack.boto3_client("sagemaker-runtime", config=no_retry)
    with pytest.raises(ClientError) as put_error:
        s3.put_object(Bucket=stack.input_bucket, Key=f"inputs/{unique}.csv", Body=IRIS_CSV.encode())
    with pytest.raises(ClientError) as invoke_error:
        runtime.invoke_endpoint_async(EndpointName="local-async", Body=IRIS_CSV.encode(), ContentType="text/csv",
                                      InferenceId=f"{unique}-never")
    # the control plane is never faulted
    assert stack.boto3_client("sagemaker", config=no_retry).describe_endpoint(EndpointName="local-async")
    faults(fault_rate=0.0)
    assert put_error.value.response["Error"]["Code"] in S3_CODES
    assert invoke_error.value.response["Error"]["Code"] in RUNTIME_CODES
    assert put_error.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)
    assert stack.boto3_client("s3").list_objects_v2(Bucket=stack.input_bucket,
                                                    Prefix=f"inputs/{unique}").get("KeyCount") == 0
    assert not [r for r in stack.records() if r["inference_id"] == f"{unique}-never"]
