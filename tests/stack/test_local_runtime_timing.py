"""TTL expiry, invocation timeout and the concurrency limit, driven from another process.

A stack with ``time_scale=120`` makes a 60 s RequestTTLSeconds expire after ~0.5 real seconds
and a 5 s InvocationTimeoutSeconds after ~0.04 s, so these run in real time without long waits.
"""

from __future__ import annotations

import pytest
from stackhelp import run_client, wait_records

SUBMIT_AND_WAIT = """
    s3, rt = boto3.client("s3"), boto3.client("sagemaker-runtime")
    answers = []
    for i, extra in enumerate(ARGS["requests"]):
        answers.append(rt.invoke_endpoint_async(EndpointName=ARGS["endpoint"], Body=f"5.1,3.5,1.4,0.{i}".encode(),
                                                ContentType="text/csv", InferenceId=f"{ARGS['prefix']}-{i}", **extra))
    found = [wait_for_object(s3, a["OutputLocation"], a["FailureLocation"]) for a in answers]
    emit([{"id": a["InferenceId"], "output": a["OutputLocation"], "failure": a["FailureLocation"],
           "uri": uri, "body": body} for a, (uri, body, _) in zip(answers, found)])
"""


@pytest.fixture(scope="module")
def fast_stack():
    from sm_async_nb.local import LocalStack

    with LocalStack(time_scale=120, concurrency=1, delay=0.0) as running:
        yield running


def test_queued_request_expires_after_request_ttl(fast_stack, unique):
    fast_stack.add_endpoint(f"{unique}-ttl", concurrency=1, delay=1.2)  # the first request holds the slot 1.2 s
    got = run_client(fast_stack, SUBMIT_AND_WAIT, {
        "endpoint": f"{unique}-ttl", "prefix": unique, "requests": [{}, {"RequestTTLSeconds": 60}]})
    first, second = got
    assert first["uri"] == first["output"]
    assert second["uri"] == second["failure"]
    assert "expired" in second["body"] and "RequestTTLSeconds (60 s)" in second["body"]
    records = {r["inference_id"]: r for r in fast_stack.records(f"{unique}-ttl")}
    assert records[second["id"]]["status"] == "Expired" and records[second["id"]]["started_at"] is None
    # it expired while the first was still running: ~0.5 real seconds, not 60
    assert records[second["id"]]["finished_at"] < records[first["id"]]["finished_at"]


def test_invocation_timeout_fails_and_late_result_is_never_written(fast_stack, unique):
    fast_stack.add_endpoint(f"{unique}-to", concurrency=1, delay=0.4)
    got = run_client(fast_stack, SUBMIT_AND_WAIT, {
        "endpoint": f"{unique}-to", "prefix": unique, "requests": [{"InvocationTimeoutSeconds": 5}]})
    [only] = got
    assert only["uri"] == only["failure"]
    assert "InvocationTimeoutSeconds (5 s)" in only["body"]
    wait_records(fast_stack, lambda rs: rs and rs[0]["late_result_discarded"], endpoint_name=f"{unique}-to")
    fast_stack.wait_until_idle()
    still = run_client(fast_stack, "s3 = boto3.client('s3'); emit(exists(s3, ARGS))", only["output"])
    assert still is False
    assert fast_stack.records(f"{unique}-to")[0]["status"] == "TimedOut"


def test_concurrency_limit_is_honoured(stack, unique):
    stack.add_endpoint(f"{unique}-conc", concurrency=2, delay=0.3)
    got = run_client(stack, SUBMIT_AND_WAIT, {"endpoint": f"{unique}-conc", "prefix": unique, "requests": [{}] * 6})
    assert all(item["uri"] == item["output"] for item in got)
    records = stack.records(f"{unique}-conc")
    events = sorted([(r["started_at"], 1) for r in records] + [(r["finished_at"], -1) for r in records],
                    key=lambda e: (e[0], e[1]))
    in_flight = peak = 0
    for _, change in events:
        in_flight += change
        peak = max(peak, in_flight)
    assert peak == 2
    assert stack.stats["endpoints"][f"{unique}-conc"]["max_in_flight"] == 2
    starts = [r["inference_id"] for r in sorted(records, key=lambda r: r["started_at"])]
    assert starts == [f"{unique}-{i}" for i in range(6)]  # FIFO


def test_concurrency_is_per_instance_times_instance_count(stack, unique):
    assert stack.add_endpoint(f"{unique}-two", concurrency=3, instance_count=2) is True
    assert stack.stats["endpoints"][f"{unique}-two"]["concurrency"] == 6
    found = run_client(stack, """
        sm = boto3.client("sagemaker")
        cfg = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(EndpointName=ARGS)["EndpointConfigName"])
        emit([cfg["ProductionVariants"][0]["InitialInstanceCount"],
              cfg["AsyncInferenceConfig"]["ClientConfig"]["MaxConcurrentInvocationsPerInstance"]])
    """, f"{unique}-two")
    assert found == [2, 3]
