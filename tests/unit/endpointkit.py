"""Helpers of the endpoint-awareness unit tests (test_endpoint_status.py, test_endpoint_magic.py): an
endpoint, its metrics and its scaling staged in moto's in-process mock the way SageMaker, CloudWatch and
Application Auto Scaling would show them, journal rows on it, and the requests the status fetches made."""

from __future__ import annotations

import datetime as dt
import time

import boto3
from motokit import moto_endpoint

from sm_async_nb.records import InvocationRecord, Status

ACCOUNT = "123456789012"
REGION = "us-east-1"
VARIANT = "AllTraffic"


def make_endpoint(name: str = "ep", *, instances: int = 1, is_async: bool = True,
                  instance_type: str = "ml.g4dn.xlarge") -> None:
    moto_endpoint(name, is_async=is_async, instance_type=instance_type)  # replaces the client fixture's "ep"
    if instances != 1:
        set_endpoint(name, current=instances, desired=instances)


def set_endpoint(name: str, *, current: int | None = None, desired: int | None = None,
                 status: str | None = None, failure_reason: str | None = None) -> None:
    """What SageMaker would change as the endpoint scales or fails (moto never does)."""
    from moto.sagemaker.models import sagemaker_backends

    endpoint = sagemaker_backends[ACCOUNT][REGION].endpoints[name]
    variant = endpoint.production_variants[0]
    if current is not None:
        variant["CurrentInstanceCount"] = current
    if desired is not None:
        variant["DesiredInstanceCount"] = desired
    if status is not None:
        endpoint.endpoint_status = status
    if failure_reason is not None:
        endpoint.failure_reason = failure_reason


def put_metrics(name: str, when: dt.datetime | None = None, **values: float) -> None:
    """Datapoints of the AWS/SageMaker metrics named by ``values`` (through a plain boto3 client)."""
    when = when or dt.datetime.now(dt.timezone.utc)
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(Namespace="AWS/SageMaker", MetricData=[
        {"MetricName": metric, "Dimensions": [{"Name": "EndpointName", "Value": name}], "Value": value,
         "Timestamp": when} for metric, value in values.items()])


def register_scaling(name: str, *, min_capacity: int = 0, max_capacity: int = 2, step_policy: bool = True,
                     alarm: bool = True, alarm_enabled: bool = True) -> None:
    """A scalable target, optionally a step policy, and the alarm on HasBacklogWithoutCapacity that triggers it
    (the set-up AWS documents for scaling an async endpoint out from zero)."""
    aas = boto3.client("application-autoscaling", region_name=REGION)
    target = {"ServiceNamespace": "sagemaker", "ResourceId": f"endpoint/{name}/variant/{VARIANT}",
              "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
    aas.register_scalable_target(**target, MinCapacity=min_capacity, MaxCapacity=max_capacity)
    aas.put_scaling_policy(**target, PolicyName="backlog-per-instance", PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration={"TargetValue": 5.0, "CustomizedMetricSpecification": {
                               "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": "AWS/SageMaker",
                               "Dimensions": [{"Name": "EndpointName", "Value": name}], "Statistic": "Average"}})
    if not step_policy:
        return
    arn = aas.put_scaling_policy(**target, PolicyName="from-zero", PolicyType="StepScaling",
                                 StepScalingPolicyConfiguration={
                                     "AdjustmentType": "ChangeInCapacity", "Cooldown": 300,
                                     "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]},
                                 )["PolicyARN"]
    if alarm:
        boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
            AlarmName=f"{name}-has-backlog-without-capacity", MetricName="HasBacklogWithoutCapacity",
            Namespace="AWS/SageMaker", Statistic="Average", Period=60, EvaluationPeriods=2, Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing",
            Dimensions=[{"Name": "EndpointName", "Value": name}], AlarmActions=[arn], ActionsEnabled=alarm_enabled)


def add_rows(client, endpoint: str, count: int, *, status: Status = Status.PENDING, invoked_at: float | None = None,
             deadline_in: float = 22500.0, finished_at: float | None = None, prefix: str = "row") -> list[str]:
    """Journal rows of this client's origin, as the submitter would have written them."""
    now = time.time()
    invoked = now - 5 if invoked_at is None else invoked_at
    records = [InvocationRecord(inference_id=f"{prefix}-{i}", endpoint_name=endpoint, status=status,
                                origin=client.origin, submitted_at=invoked, invoked_at=invoked + i * 0.001,
                                deadline=now + deadline_in + i, finished_at=finished_at,
                                output_location=f"s3://input-bucket/out/{prefix}-{i}.out",
                                failure_location=f"s3://input-bucket/failures/{prefix}-{i}-error.out")
               for i in range(count)]
    client.journal.add(records)
    return [r.inference_id for r in records]


def endpoint_requests(client) -> dict[str, int]:
    """The requests the status fetches made (everything but S3 and the runtime)."""
    skip = ("s3", "sagemaker-runtime", "sts")
    return {k: v for k, v in client.aws.counter.counts.items() if "." in k and k.split(".")[0] not in skip}
