"""The stack's own endpoints (``LocalStack(model=...)``, ``add_endpoint``), made the way any user
makes one: CreateModel → CreateEndpointConfig (``AsyncInferenceConfig``) → CreateEndpoint through
boto3, waited for as the ``endpoint_in_service`` waiter waits, and the scaling its options ask for
registered in Application Auto Scaling and CloudWatch — so the lifecycle, the resolution of the
model and the scaler treat them exactly as they treat anyone else's (SPEC §17).

The model is pointed at, not copied: its container's Environment carries
``SM_ASYNC_NB_LOCAL_MODEL`` (a handler file or folder, a container URL, or a Python object of the
engine's process) and, for ``delay``, ``SM_ASYNC_NB_DELAY`` (``service/resolution.py`` reads both).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..contract.names import NAMESPACE, NO_CAPACITY_METRIC, SCALABLE_DIMENSION, resource_id
from .config import EndpointSpec
from .service.lifecycle import DEFAULT_STARTUP_SECONDS, FAILED, IN_SERVICE
from .service.resolution import DELAY_ENV, POINTER_ENV
from .service.scaling import BACKLOG
from .settings import ACCOUNT_ID, MOTO_REQUIREMENT, ROLE_ARN

log = logging.getLogger(__name__)

WAIT_MARGIN_SECONDS = 60.0  # beyond the model's startup time, how long to wait for InService


@dataclass(frozen=True)
class OwnScaling:
    """The stack's scaling options (names fixed by SPEC §10; checked by ``StackConfig``)."""

    min_instances: int = 1
    max_instances: int = 1
    scale_out_seconds: float | None = 0.0
    scale_in_idle_seconds: float | None = None


@dataclass(frozen=True)
class Defaults:
    """What an endpoint of the stack gets when its spec does not say."""

    region: str
    output_path: str
    failure_path: str
    concurrency: int
    time_scale: float = 1.0


def local_image(region: str) -> str:
    """The container image the stack's own models name (never mapped: they carry a pointer)."""
    return f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/sm-async-nb-local:latest"


def create_endpoint(clients: dict[str, Any], spec: EndpointSpec, pointer: str, defaults: Defaults) -> None:
    """Create ``spec``'s model, endpoint config and endpoint, and wait until it is InService.

    Raises:
        ValueError: the endpoint ended Failed (its FailureReason), or the control plane refused a
            call (its message); everything made was removed.
        RuntimeError: moto drops AsyncInferenceConfig (too old), or it never left Creating.
    """
    from botocore.exceptions import ClientError

    name, sm, sns = spec.name, clients["sagemaker"], clients["sns"]
    undo: list[Callable[[], Any]] = []
    environment = {POINTER_ENV: pointer, **({DELAY_ENV: repr(spec.delay)} if spec.delay else {})}
    try:
        sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE_ARN,
                        PrimaryContainer={"Image": local_image(defaults.region), "Environment": environment})
        undo.append(lambda: sm.delete_model(ModelName=f"{name}-model"))
        extra: dict[str, Any] = {}
        if spec.asynchronous:
            output: dict[str, Any] = {"S3OutputPath": spec.output_path or defaults.output_path,
                                      "S3FailurePath": spec.failure_path or defaults.failure_path}
            if spec.sns or spec.include_response:
                topics = {key: sns.create_topic(Name=f"{name}-{kind}")["TopicArn"]
                          for key, kind in (("SuccessTopic", "success"), ("ErrorTopic", "error"))}
                undo.extend(partial(sns.delete_topic, TopicArn=arn) for arn in topics.values())
                output["NotificationConfig"] = topics
                if spec.include_response:
                    output["NotificationConfig"]["IncludeInferenceResponseIn"] = ["SUCCESS_NOTIFICATION_TOPIC"]
            extra["AsyncInferenceConfig"] = {"OutputConfig": output, "ClientConfig": {
                "MaxConcurrentInvocationsPerInstance": spec.concurrency or defaults.concurrency}}
        sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": f"{name}-model", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": spec.instance_count or 1}], **extra)
        undo.append(lambda: sm.delete_endpoint_config(EndpointConfigName=f"{name}-config"))
        if spec.asynchronous and "AsyncInferenceConfig" not in sm.describe_endpoint_config(
                EndpointConfigName=f"{name}-config"):
            import moto

            raise RuntimeError(f"moto {moto.__version__} does not keep an endpoint config's AsyncInferenceConfig; "
                               f"the local stack needs {MOTO_REQUIREMENT}: pip install '{MOTO_REQUIREMENT}'")
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
        undo.append(lambda: sm.delete_endpoint(EndpointName=name))
        described = wait_in_service(sm, name, (DEFAULT_STARTUP_SECONDS / defaults.time_scale) + WAIT_MARGIN_SECONDS)
        if described["EndpointStatus"] == FAILED:
            raise ValueError(described.get("FailureReason") or f"endpoint {name} failed")
    except BaseException as exc:
        for step in reversed(undo):
            try:
                step()
            except Exception:  # best effort: what could not be removed is logged
                log.warning("could not remove part of the failed endpoint %s", name, exc_info=True)
        if isinstance(exc, ClientError):
            raise ValueError(f"endpoint {name}: {exc.response.get('Error', {}).get('Message', exc)}") from None
        raise


def wait_in_service(sm: Any, name: str, timeout: float, interval: float = 0.05) -> dict[str, Any]:
    """DescribeEndpoint until it is no longer Creating/Updating (as the boto3 waiter, polling faster).

    Raises:
        RuntimeError: still in progress after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        described = dict(sm.describe_endpoint(EndpointName=name))
        if described["EndpointStatus"] in (IN_SERVICE, FAILED):
            return described
        if time.monotonic() > deadline:
            raise RuntimeError(f"endpoint {name} is still {described['EndpointStatus']} after {timeout:g} s")
        time.sleep(interval)


def register_scaling(clients: dict[str, Any], hold: Callable[[str, float], None], name: str, initial: int,
                     scaling: OwnScaling) -> None:
    """Register what the stack's scaling options mean, as a user would with boto3: the scalable
    target, a step policy on a ``HasBacklogWithoutCapacity`` alarm (scale out from zero after
    ``scale_out_seconds``), a step policy back to ``min_instances`` on an idle alarm (after
    ``scale_in_idle_seconds``), and the starting count (0 with ``min_instances=0``).

    Args:
        hold: the scaler's :meth:`~sm_async_nb.local.service.scaling.Scaler.hold` (the stack's own
            alarms fire after these seconds in breach, not after their periods).
    """
    aas, cloudwatch, sm = clients["application-autoscaling"], clients["cloudwatch"], clients["sagemaker"]
    target = {"ServiceNamespace": "sagemaker", "ResourceId": resource_id(name), "ScalableDimension": SCALABLE_DIMENSION}
    aas.register_scalable_target(**target, MinCapacity=scaling.min_instances,
                                 MaxCapacity=max(scaling.max_instances, initial))
    dimensions = [{"Name": "EndpointName", "Value": name}]
    rules = []
    if scaling.scale_out_seconds is not None:
        rules.append((f"{name}-scale-out-from-zero", NO_CAPACITY_METRIC, "GreaterThanOrEqualToThreshold", 1.0,
                      {"AdjustmentType": "ChangeInCapacity", "Cooldown": int(scaling.scale_out_seconds),
                       "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]},
                      scaling.scale_out_seconds))
    if scaling.scale_in_idle_seconds is not None:
        rules.append((f"{name}-scale-in-when-idle", BACKLOG, "LessThanOrEqualToThreshold", 0.0,
                      {"AdjustmentType": "ExactCapacity", "Cooldown": 0,
                       "StepAdjustments": [{"MetricIntervalUpperBound": 0.0,
                                            "ScalingAdjustment": scaling.min_instances}]},
                      scaling.scale_in_idle_seconds))
    for policy_name, metric, comparison, threshold, config, seconds in rules:
        policy = aas.put_scaling_policy(PolicyName=policy_name, PolicyType="StepScaling", **target,
                                        StepScalingPolicyConfiguration={**config, "MetricAggregationType": "Average"})
        alarm = f"{policy_name}-{metric}"
        cloudwatch.put_metric_alarm(AlarmName=alarm, Namespace=NAMESPACE, MetricName=metric, Dimensions=dimensions,
                                    Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=threshold,
                                    ComparisonOperator=comparison, TreatMissingData="missing",
                                    AlarmActions=[policy["PolicyARN"]])
        hold(alarm, seconds)
    start = 0 if scaling.min_instances == 0 else max(initial, scaling.min_instances)
    if start != initial:
        sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredWeight": 1.0, "DesiredInstanceCount": start}])
