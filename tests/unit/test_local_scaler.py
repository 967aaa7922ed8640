"""The scaling a user registers, emulated (SPEC §17), with an injected clock: policies are registered
with plain boto3 in moto's mock, the backlog is real queued requests, ``step(now)`` decides."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
import pytest

from sm_async_nb.local.service.models import Backend, Endpoint, InvokeArgs
from sm_async_nb.local.service.scaling import Scaler

NAME, RESOURCE, DIMENSION = "ep", "endpoint/ep/variant/AllTraffic", "sagemaker:variant:DesiredInstanceCount"
PERIOD = 10.0  # the stack's metrics period in these tests (one "CloudWatch minute")


@dataclass
class Fleet:
    name: str
    variant: str
    desired: int
    current: int


class FakeFleet:
    """The lifecycle's fleet as the scaler sees it: the desired count becomes current at once."""

    def __init__(self, count: int):
        self.fleet = Fleet(NAME, "AllTraffic", count, count)
        self.changes: list[int] = []

    def fleets(self):
        return [Fleet(**vars(self.fleet))]

    def set_desired(self, name, variant, count):
        assert (name, variant) == (NAME, "AllTraffic")
        self.fleet.desired = self.fleet.current = count
        self.changes.append(count)


@pytest.fixture
def world(moto_aws):
    backend = Backend()
    backend.register(Endpoint(name=NAME, model=None, output_path="s3://out-bucket/out/"))
    clients = {"application-autoscaling": boto3.client("application-autoscaling"),
               "cloudwatch": boto3.client("cloudwatch")}
    return backend, clients


def scaler_for(world, fleet) -> Scaler:
    backend, clients = world
    scaler = Scaler(backend, fleet, clients, PERIOD, clock=lambda: pytest.fail("tests pass now"), wall=lambda: 1e9)
    scaler.refresh()
    return scaler


def backlog(backend: Backend, count: int) -> None:
    for _ in range(count):
        backend.submit(InvokeArgs(endpoint_name=NAME, body=b"1"), now_clock=0.0, now_wall=1e9)


def register(clients, low: int, high: int) -> None:
    clients["application-autoscaling"].register_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=RESOURCE, ScalableDimension=DIMENSION, MinCapacity=low,
        MaxCapacity=high)


def tracking(clients, target: float, out_cooldown: int = 0, in_cooldown: int = 0) -> None:
    """Target tracking on ApproximateBacklogSizePerInstance, as AWS's async-inference docs show it."""
    clients["application-autoscaling"].put_scaling_policy(
        PolicyName="backlog-tracking", ServiceNamespace="sagemaker", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target, "ScaleOutCooldown": out_cooldown, "ScaleInCooldown": in_cooldown,
            "CustomizedMetricSpecification": {"MetricName": "ApproximateBacklogSizePerInstance",
                                              "Namespace": "AWS/SageMaker", "Statistic": "Average",
                                              "Dimensions": [{"Name": "EndpointName", "Value": NAME}]}})


def step_policy(clients, metric: str, threshold: float, adjustment: int, cooldown: int, periods: int = 2,
                kind: str = "ChangeInCapacity") -> None:
    arn = clients["application-autoscaling"].put_scaling_policy(
        PolicyName=f"step-{metric}", ServiceNamespace="sagemaker", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
        PolicyType="StepScaling", StepScalingPolicyConfiguration={
            "AdjustmentType": kind, "MetricAggregationType": "Average", "Cooldown": cooldown,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": adjustment}]})["PolicyARN"]
    clients["cloudwatch"].put_metric_alarm(
        AlarmName=f"alarm-{metric}", MetricName=metric, Namespace="AWS/SageMaker", Statistic="Average",
        EvaluationPeriods=periods, DatapointsToAlarm=periods, Threshold=threshold, Period=60,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing",
        Dimensions=[{"Name": "EndpointName", "Value": NAME}], AlarmActions=[arn])


def test_target_tracking_scales_out_after_three_periods_then_in_after_fifteen(world):
    backend, clients = world
    register(clients, 1, 4)
    tracking(clients, target=2.0)
    fleet = FakeFleet(1)
    scaler = scaler_for(world, fleet)
    backlog(backend, 7)  # 7 per instance at 1 instance: wants ceil(7 / 2) = 4
    scaler.step(0.0)
    scaler.step(2 * PERIOD)
    assert fleet.changes == []  # not yet 3 periods above the target
    scaler.step(3 * PERIOD)
    assert fleet.changes == [4]
    while backend.queued(NAME):  # drained
        backend.pop_next(NAME)
    scaler.step(4 * PERIOD)
    scaler.step(18 * PERIOD)
    assert fleet.changes == [4]  # below 90 % of the target for 14 periods only
    scaler.step(19 * PERIOD)
    assert fleet.changes == [4, 1]  # back to MinCapacity


def test_target_tracking_never_acts_at_zero_and_a_step_policy_scales_out_from_zero(world):
    backend, clients = world
    register(clients, 0, 2)
    tracking(clients, target=1.0)
    step_policy(clients, "HasBacklogWithoutCapacity", 1.0, adjustment=1, cooldown=0, periods=2)
    fleet = FakeFleet(0)
    scaler = scaler_for(world, fleet)
    backlog(backend, 5)
    scaler.step(0.0)
    scaler.step(1.5 * PERIOD)
    assert fleet.changes == []  # the alarm needs 2 periods in breach
    scaler.step(2 * PERIOD)
    assert fleet.changes == [1]  # out of zero by the step policy
    scaler.step(3 * PERIOD)  # target tracking's breach starts now that there is an instance
    scaler.step(5 * PERIOD)
    assert fleet.changes == [1]
    scaler.step(6 * PERIOD)
    assert fleet.changes == [1, 2]  # then target tracking (5 per instance, target 1), capped at MaxCapacity


def test_a_step_policys_cooldown_holds(world):
    backend, clients = world
    register(clients, 1, 5)
    step_policy(clients, "ApproximateBacklogSizePerInstance", 2.0, adjustment=1, cooldown=100, periods=1)
    fleet = FakeFleet(1)
    scaler = scaler_for(world, fleet)
    backlog(backend, 20)
    scaler.step(0.0)
    scaler.step(PERIOD)
    assert fleet.changes == [2]
    for at in range(2, 11):
        scaler.step(at * PERIOD)
    assert fleet.changes == [2]  # still in breach, but within the 100 s cooldown
    scaler.step(11 * PERIOD + 1)
    assert fleet.changes == [2, 3]


def test_registering_a_target_moves_the_count_into_its_range_and_exact_capacity(world):
    backend, clients = world
    register(clients, 2, 3)
    fleet = FakeFleet(1)
    scaler = scaler_for(world, fleet)
    scaler.step(0.0)
    assert fleet.changes == [2]
    register(clients, 1, 1)  # someone narrows it (the routes call refresh() on such a write)
    scaler.refresh()
    scaler.step(1.0)
    assert fleet.changes == [2, 1]


def test_the_stacks_own_alarm_fires_after_its_hold_not_its_periods(world):
    backend, clients = world
    register(clients, 0, 1)
    step_policy(clients, "HasBacklogWithoutCapacity", 1.0, adjustment=1, cooldown=0, periods=5)
    fleet = FakeFleet(0)
    scaler = scaler_for(world, fleet)
    scaler.hold("alarm-HasBacklogWithoutCapacity", 0.5)
    backlog(backend, 1)
    scaler.step(0.0)
    scaler.step(0.4)
    assert fleet.changes == []
    scaler.step(0.5)
    assert fleet.changes == [1]


def test_metrics_are_put_once_a_period(world, monkeypatch):
    backend, clients = world
    fleet = FakeFleet(2)
    scaler = scaler_for(world, fleet)
    backlog(backend, 3)
    put: list[dict] = []
    monkeypatch.setattr(clients["cloudwatch"], "put_metric_data", lambda **kw: put.append(kw))
    for at in (0.0, 1.0, PERIOD - 0.1, PERIOD):
        scaler.step(at)
    assert len(put) == 2
    values = {d["MetricName"]: d["Value"] for d in put[0]["MetricData"]}
    assert values == {"ApproximateBacklogSize": 3.0, "ApproximateBacklogSizePerInstance": 1.5,
                      "ApproximateAgeOfOldestRequest": 0.0, "HasBacklogWithoutCapacity": 0.0}
