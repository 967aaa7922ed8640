"""Endpoint awareness, emulated (SPEC §10): instance counts and scale from zero, the scalable
target/policy/alarm, the backlog metrics and the model's log lines — all read back by plain
boto3 (in a process configured only by ``stack.env``) and by the AWS CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from stackhelp import IRIS_CSV, client_env, run_client, wait_records

AWS_CLI = os.environ.get("SM_ASYNC_NB_AWS_CLI") or shutil.which("aws")

NOISY_MODEL = '''
import logging, sys
def input_fn(body, content_type):
    print("decoding", len(body), "bytes")
    return body.decode()
def predict_fn(data, model):
    logging.getLogger("noisy").warning("predicting %r", data.strip())
    if "bad" in data:
        raise ValueError("this row is bad")
    return data
def output_fn(prediction, accept):
    return prediction, "text/csv"
'''

READ_BACK = """
sm, aas = boto3.client("sagemaker"), boto3.client("application-autoscaling")
variant = sm.describe_endpoint(EndpointName=ARGS)["ProductionVariants"][0]
targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
alarms = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
emit({"current": variant["CurrentInstanceCount"], "desired": variant["DesiredInstanceCount"],
      "targets": [(t["ResourceId"], t["ScalableDimension"], t["MinCapacity"], t["MaxCapacity"]) for t in targets],
      "policies": [(p["ResourceId"], p["PolicyType"], p["PolicyARN"]) for p in policies],
      "alarms": [(a["MetricName"], a["Namespace"], a["Dimensions"], a["AlarmActions"]) for a in alarms]})
"""


def invoke(stack, count: int, **extra) -> list[str]:
    runtime = stack.boto3_client("sagemaker-runtime")
    return [runtime.invoke_endpoint_async(EndpointName=stack.endpoint_name, Body=IRIS_CSV.encode(),
                                          ContentType="text/csv", **extra)["InferenceId"] for _ in range(count)]


def test_zero_instances_without_a_policy_requests_wait_until_their_ttl():
    from sm_async_nb.local import LocalStack

    with LocalStack(min_instances=0, scale_out_seconds=None, time_scale=60, metrics_period_seconds=30) as stack:
        waiting = invoke(stack, 2)
        expiring = invoke(stack, 1, RequestTTLSeconds=60)  # one real second at time_scale=60
        records = wait_records(stack, lambda rs: any(r["status"] == "Expired" for r in rs))
        by_id = {r["inference_id"]: r["status"] for r in records}
        assert by_id == {**dict.fromkeys(waiting, "Queued"), expiring[0]: "Expired"}  # nothing failed or ran
        got = run_client(stack, READ_BACK, stack.endpoint_name)
    assert (got["current"], got["desired"]) == (0, 0)
    assert got["targets"] == [[f"endpoint/{stack.endpoint_name}/variant/AllTraffic",
                               "sagemaker:variant:DesiredInstanceCount", 0, 1]]
    assert got["policies"] == [] and got["alarms"] == []


def test_scale_from_zero_then_back_in():
    from sm_async_nb.local import LocalStack

    with LocalStack(min_instances=0, scale_out_seconds=0.5, scale_in_idle_seconds=1.0, delay=0.2) as stack:
        got = run_client(stack, READ_BACK, stack.endpoint_name)
        assert (got["current"], got["desired"]) == (0, 0)
        # Two step policies, each triggered by its alarm: out of zero on HasBacklogWithoutCapacity, back
        # to min_instances on an idle backlog (ApproximateBacklogSize <= 0).
        assert {kind for _, kind, _ in got["policies"]} == {"StepScaling"} and len(got["policies"]) == 2
        assert all(resource.endswith("/variant/AllTraffic") for resource, _, _ in got["policies"])
        arns = {arn for _, _, arn in got["policies"]}
        by_metric = {metric: (namespace, dimensions, actions) for metric, namespace, dimensions, actions in got["alarms"]}
        assert set(by_metric) == {"HasBacklogWithoutCapacity", "ApproximateBacklogSize"}
        for namespace, dimensions, actions in by_metric.values():
            assert namespace == "AWS/SageMaker" and len(actions) == 1 and actions[0] in arns
            assert dimensions == [{"Name": "EndpointName", "Value": stack.endpoint_name}]
        assert by_metric["HasBacklogWithoutCapacity"][2] != by_metric["ApproximateBacklogSize"][2]

        ids = invoke(stack, 3)
        wait_records(stack, lambda rs: [r["status"] for r in rs] == ["Completed"] * 3, timeout=30)
        assert {r["inference_id"] for r in stack.records()} == set(ids)
        scaled = run_client(stack, READ_BACK, stack.endpoint_name)
        assert (scaled["current"], scaled["desired"]) in {(1, 1), (0, 0)}  # 0 again once idle for 1 s
        deadline = time.monotonic() + 20
        while run_client(stack, READ_BACK, stack.endpoint_name)["current"] != 0:
            assert time.monotonic() < deadline, "never scaled back in"
            time.sleep(0.2)


def test_scale_out_is_seen_by_describe_endpoint_while_it_runs():
    from sm_async_nb.local import LocalStack

    with LocalStack(min_instances=0, scale_out_seconds=0.2, delay=3.0) as stack:
        invoke(stack, 1)
        wait_records(stack, lambda rs: rs[0]["status"] == "Running", timeout=20)
        got = run_client(stack, READ_BACK, stack.endpoint_name)
        assert (got["current"], got["desired"]) == (1, 1)


def test_backlog_metrics_are_read_by_plain_boto3_get_metric_data():
    from sm_async_nb.local import LocalStack

    with LocalStack(min_instances=0, scale_out_seconds=None, metrics_period_seconds=0.3) as stack:
        invoke(stack, 4)
        # The scaler puts the metrics every period of real time, in the stack's process: read them until
        # a period after the four invokes is in (the requests wait there: no instance, no scale-out).
        got = run_client(stack, """
            import datetime
            cw = boto3.client("cloudwatch")
            names = ["ApproximateBacklogSize", "ApproximateBacklogSizePerInstance",
                     "ApproximateAgeOfOldestRequest", "HasBacklogWithoutCapacity"]
            deadline = time.monotonic() + 30
            while True:
                now = datetime.datetime.now(datetime.timezone.utc)
                answer = cw.get_metric_data(StartTime=now - datetime.timedelta(minutes=5),
                                            EndTime=now + datetime.timedelta(minutes=1), MetricDataQueries=[
                    {"Id": f"m{i}", "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": name,
                     "Dimensions": [{"Name": "EndpointName", "Value": ARGS}]}, "Period": 60, "Stat": "Maximum"}}
                    for i, name in enumerate(names)])
                got = {names[int(r["Id"][1:])]: r["Values"] for r in answer["MetricDataResults"]}
                if (max(got["ApproximateBacklogSize"], default=0) >= 4
                        and max(got["ApproximateAgeOfOldestRequest"], default=0) > 0) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            emit(got)
        """, stack.endpoint_name)
    assert max(got["ApproximateBacklogSize"]) == 4
    assert max(got["ApproximateBacklogSizePerInstance"]) == 4
    assert max(got["HasBacklogWithoutCapacity"]) == 1
    assert max(got["ApproximateAgeOfOldestRequest"]) > 0


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    from sm_async_nb.local import LocalStack

    model = tmp_path_factory.mktemp("model") / "noisy.py"
    model.write_text(NOISY_MODEL)
    with LocalStack(model=str(model), endpoint_name="noisy") as stack:
        yield stack


def test_a_failing_rows_log_lines_are_read_by_plain_boto3_filter_log_events(noisy):
    runtime = noisy.boto3_client("sagemaker-runtime")
    runtime.invoke_endpoint_async(EndpointName="noisy", Body=b"fine\n", ContentType="text/csv", InferenceId="ok-1")
    runtime.invoke_endpoint_async(EndpointName="noisy", Body=b"bad\n", ContentType="text/csv", InferenceId="bad-1")
    assert noisy.wait_until_idle(20)
    got = run_client(noisy, """
        logs = boto3.client("logs")
        group = "/aws/sagemaker/Endpoints/noisy"
        streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
        events = logs.filter_log_events(logGroupName=group, filterPattern='"bad-1"')["events"]
        emit({"streams": streams, "messages": [e["message"] for e in events]})
    """)
    assert len(got["streams"]) == 1 and got["streams"][0].startswith("AllTraffic/i-")
    messages = got["messages"]
    assert messages and all(m.startswith("[bad-1] ") for m in messages)
    assert "[bad-1] decoding 4 bytes" in messages
    assert "[bad-1] WARNING noisy: predicting 'bad'" in messages
    assert messages[-1] == "[bad-1] ValueError: this row is bad"
    assert any("Traceback" in m for m in messages)


@pytest.mark.skipif(AWS_CLI is None, reason="the AWS CLI is not installed (.ci/run installs it)")
def test_the_aws_cli_reads_the_scaling_and_the_logs(noisy):
    runtime = noisy.boto3_client("sagemaker-runtime")
    runtime.invoke_endpoint_async(EndpointName="noisy", Body=b"bad\n", ContentType="text/csv", InferenceId="cli-bad")
    assert noisy.wait_until_idle(20)

    def aws(*args):
        done = subprocess.run([AWS_CLI, *args, "--output", "json"], env=client_env(noisy), capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    targets = aws("application-autoscaling", "describe-scalable-targets", "--service-namespace", "sagemaker")
    assert [t["ResourceId"] for t in targets["ScalableTargets"]] == ["endpoint/noisy/variant/AllTraffic"]
    variant = aws("sagemaker", "describe-endpoint", "--endpoint-name", "noisy")["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == 1
    events = aws("logs", "filter-log-events", "--log-group-name", "/aws/sagemaker/Endpoints/noisy",
                 "--filter-pattern", '"cli-bad"')["events"]
    assert events[-1]["message"] == "[cli-bad] ValueError: this row is bad"


def test_each_instance_logs_to_its_own_stream(tmp_path):
    from sm_async_nb.local import LocalStack

    model = tmp_path / "noisy.py"
    model.write_text(NOISY_MODEL)
    with LocalStack(model=str(model), endpoint_name="pair", concurrency=1, instance_count=2, max_instances=2,
                    delay=0.5) as stack:
        runtime = stack.boto3_client("sagemaker-runtime")
        for name in ("first", "second"):
            runtime.invoke_endpoint_async(EndpointName="pair", Body=b"1\n", ContentType="text/csv", InferenceId=name)
        assert stack.wait_until_idle(20)
        logs = stack.boto3_client("logs")
        events = logs.filter_log_events(logGroupName="/aws/sagemaker/Endpoints/pair")["events"]
    streams = {e["message"].split("]")[0][1:]: e["logStreamName"] for e in events}
    assert set(streams) == {"first", "second"} and streams["first"] != streams["second"]
    assert all(s.startswith("AllTraffic/i-") for s in streams.values())
