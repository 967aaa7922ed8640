"""Scaling the user registers drives the emulated fleet (SPEC §17): target tracking on
ApproximateBacklogSizePerInstance between MinCapacity and MaxCapacity, a step policy on a
HasBacklogWithoutCapacity alarm out of zero — registered with plain boto3 or the AWS CLI, read back
by DescribeEndpoint, the metrics and ``client.endpoint_status()``; each instance runs
MaxConcurrentInvocationsPerInstance requests at once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from stackhelp import SCALER_HANDLER, client_env, create_endpoint, run_client, tar_gz, wait_records

AWS_CLI = os.environ.get("SM_ASYNC_NB_AWS_CLI") or shutil.which("aws")
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/sklearn-inference:1.2-1"
PERIOD = 0.25  # metrics_period_seconds: the emulated CloudWatch minute

REGISTER = """
aas = boto3.client("application-autoscaling")
resource = f"endpoint/{ARGS['name']}/variant/AllTraffic"
aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                             ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                             MinCapacity=ARGS["min"], MaxCapacity=ARGS["max"])
if ARGS.get("target"):
    aas.put_scaling_policy(PolicyName="backlog-per-instance", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={"TargetValue": ARGS["target"],
            "CustomizedMetricSpecification": {"MetricName": "ApproximateBacklogSizePerInstance",
                "Namespace": "AWS/SageMaker", "Dimensions": [{"Name": "EndpointName", "Value": ARGS["name"]}],
                "Statistic": "Average"},
            "ScaleInCooldown": 0, "ScaleOutCooldown": 0})
if ARGS.get("from_zero"):
    arn = aas.put_scaling_policy(PolicyName="from-zero", ServiceNamespace="sagemaker", ResourceId=resource,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", PolicyType="StepScaling",
        StepScalingPolicyConfiguration={"AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
                                        "Cooldown": 300,
                                        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]},
    )["PolicyARN"]
    boto3.client("cloudwatch").put_metric_alarm(AlarmName="from-zero", MetricName="HasBacklogWithoutCapacity",
        Namespace="AWS/SageMaker", Statistic="Average", EvaluationPeriods=2, DatapointsToAlarm=2, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing", Period=60,
        Dimensions=[{"Name": "EndpointName", "Value": ARGS["name"]}], AlarmActions=[arn])
    boto3.client("sagemaker").update_endpoint_weights_and_capacities(EndpointName=ARGS["name"],
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}])
emit("registered")
"""


@pytest.fixture(scope="module")
def stack():
    from sm_async_nb.local import LocalStack

    with LocalStack(metrics_period_seconds=PERIOD) as stack:
        archive = tar_gz({"model.json": '{"scale": 1}', "code/inference.py": SCALER_HANDLER})
        stack.boto3_client("s3").put_object(Bucket=stack.input_bucket, Key="scaling/model.tar.gz", Body=archive)
        yield stack


def make(stack, name: str) -> None:
    described = create_endpoint(stack.boto3_client("sagemaker"), name, {"PrimaryContainer": {
        "Image": IMAGE, "ModelDataUrl": f"s3://{stack.input_bucket}/scaling/model.tar.gz"}},
        output=f"s3://{stack.input_bucket}/scaling/{name}/", concurrency=1)
    assert described["EndpointStatus"] == "InService"


def backlog(stack, name: str, count: int, body: bytes = b"sleep 0.6") -> list[str]:
    stack.boto3_client("s3").put_object(Bucket=stack.input_bucket, Key=f"scaling/{name}.in", Body=body)
    runtime = stack.boto3_client("sagemaker-runtime")
    return [runtime.invoke_endpoint_async(EndpointName=name, ContentType="text/csv",
                                          InputLocation=f"s3://{stack.input_bucket}/scaling/{name}.in")["InferenceId"]
            for _ in range(count)]


def counts(stack, name: str) -> tuple[int, int]:
    variant = stack.boto3_client("sagemaker").describe_endpoint(EndpointName=name)["ProductionVariants"][0]
    return variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]


def eventually(read, accept, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"never accepted: last {value!r}"
        time.sleep(0.05)


def test_target_tracking_scales_out_to_max_capacity_and_back_in(stack, tmp_path):
    make(stack, "tracked")
    assert run_client(stack, REGISTER, {"name": "tracked", "min": 1, "max": 3, "target": 2.0}) == "registered"
    ids = backlog(stack, "tracked", 18)
    seen = eventually(lambda: counts(stack, "tracked"), lambda c: c == (3, 3))  # 18 per instance > 2: out, at most 3
    assert seen == (3, 3)
    with stack.client(journal_path=tmp_path / "j.sqlite3") as client:
        status = client.endpoint_status("tracked", max_age=0)
        assert (status.current_instances, status.min_capacity, status.max_capacity) == (3, 1, 3)
    wait_records(stack, lambda rs: {r["status"] for r in rs if r["inference_id"] in ids} == {"Completed"},
                 timeout=60, endpoint_name="tracked")
    assert stack.stats["endpoints"]["tracked"]["max_in_flight"] == 3  # 1 per instance, 3 instances
    assert eventually(lambda: counts(stack, "tracked"), lambda c: c == (1, 1)) == (1, 1)  # in, after 15 periods


def test_a_step_policy_on_has_backlog_without_capacity_scales_out_from_zero(stack, tmp_path):
    make(stack, "from-zero")
    run_client(stack, REGISTER, {"name": "from-zero", "min": 0, "max": 2, "from_zero": True})
    assert counts(stack, "from-zero") == (0, 0)
    with stack.client(journal_path=tmp_path / "j.sqlite3") as client:
        status = client.endpoint_status("from-zero", max_age=0)
        assert (status.current_instances, status.scales_from_zero) == (0, True)
    began = time.monotonic()
    [only] = backlog(stack, "from-zero", 1, body=b"1\n")
    assert eventually(lambda: counts(stack, "from-zero"), lambda c: c == (1, 1)) == (1, 1)
    assert time.monotonic() - began >= 2 * PERIOD  # the alarm's two periods in breach
    wait_records(stack, lambda rs: [r["status"] for r in rs if r["inference_id"] == only] == ["Completed"],
                 endpoint_name="from-zero")
    time.sleep(1.0)  # the step policy's cooldown (300 s) holds, and the metric no longer breaches
    assert counts(stack, "from-zero") == (1, 1)


def test_update_endpoint_weights_and_capacities_sets_the_fleet(stack):
    make(stack, "manual")
    stack.boto3_client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName="manual", DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    assert counts(stack, "manual") == (2, 2)
    ids = backlog(stack, "manual", 4)
    wait_records(stack, lambda rs: {r["status"] for r in rs if r["inference_id"] in ids} == {"Completed"},
                 endpoint_name="manual", timeout=30)
    assert stack.stats["endpoints"]["manual"]["max_in_flight"] == 2


@pytest.mark.skipif(AWS_CLI is None, reason="the AWS CLI is not installed (.ci/run installs it)")
def test_scaling_registered_with_the_aws_cli_drives_the_fleet(stack, tmp_path):
    make(stack, "cli-scaled")

    def aws(*args):
        done = subprocess.run([AWS_CLI, *args, "--output", "json"], env=client_env(stack), capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.startswith("{") else None

    resource = ["--service-namespace", "sagemaker", "--resource-id", "endpoint/cli-scaled/variant/AllTraffic",
                "--scalable-dimension", "sagemaker:variant:DesiredInstanceCount"]
    aws("application-autoscaling", "register-scalable-target", *resource, "--min-capacity", "1", "--max-capacity", "2")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"TargetValue": 1.0, "ScaleOutCooldown": 0, "ScaleInCooldown": 0,
                                  "CustomizedMetricSpecification": {
                                      "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
                                      "Dimensions": [{"Name": "EndpointName", "Value": "cli-scaled"}],
                                      "Statistic": "Average"}}))
    aws("application-autoscaling", "put-scaling-policy", *resource, "--policy-name", "cli-tracking", "--policy-type",
        "TargetTrackingScaling", "--target-tracking-scaling-policy-configuration", f"file://{policy}")
    backlog(stack, "cli-scaled", 6)

    def current():
        return aws("sagemaker", "describe-endpoint", "--endpoint-name", "cli-scaled")["ProductionVariants"][0][
            "CurrentInstanceCount"]

    assert eventually(current, lambda c: c == 2) == 2
