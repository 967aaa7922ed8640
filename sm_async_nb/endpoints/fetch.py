"""The AWS reads behind one ``EndpointStatus``: a fixed handful of requests per endpoint, whatever the
number of invocations (SPEC §10).

* SageMaker: one DescribeEndpoint; DescribeEndpointConfig once per config name (configs are
  immutable, so the caller keeps them).
* CloudWatch: one GetMetricData with the four backlog metrics (namespace AWS/SageMaker, dimension
  EndpointName, period 60 s, the last 10 minutes, newest datapoint).
* Application Auto Scaling: one DescribeScalableTargets for the endpoint's variants; only when a
  variant may sit at 0 instances (MinCapacity 0), DescribeScalingPolicies for it and one
  DescribeAlarmsForMetric on HasBacklogWithoutCapacity, to see whether anything scales it out.

Every call goes through :meth:`Reader.call`: an AWS error never propagates. A missing permission leaves
the fields of that call None and adds one warning naming the IAM action; other trouble (throttling
that outlasted the retries, no network) adds one warning saying what failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from ..aws.clients import ServiceName, explain, is_missing_endpoint
from ..context import Context
from ..contract.names import NAMESPACE, NO_CAPACITY_METRIC, SCALABLE_DIMENSION, resource_id

log = logging.getLogger(__name__)

METRICS_PERIOD_S = 60
METRICS_WINDOW_S = 600
# GetMetricData query id -> CloudWatch metric name (ids must start with a lower-case letter).
METRICS = {
    "backlog": "ApproximateBacklogSize",
    "per_instance": "ApproximateBacklogSizePerInstance",
    "oldest_age": "ApproximateAgeOfOldestRequest",
    "no_capacity": NO_CAPACITY_METRIC,
}
SAME_FOR_EVERY_CALL = frozenset({"credentials", "connection", "region"})
# What each read gives, for the warning when it cannot be made.
WHAT = {
    "DescribeEndpoint": "the endpoint's status and instance counts are unknown",
    "DescribeEndpointConfig": "the instance type and whether it is async are unknown",
    "GetMetricData": "backlog, per-instance backlog, age of the oldest request and HasBacklogWithoutCapacity "
                     "are unknown",
    "DescribeScalableTargets": "min/max capacity and scale-from-zero are unknown",
    "DescribeScalingPolicies": "whether it scales out from zero is unknown",
    "DescribeAlarmsForMetric": "whether an alarm on HasBacklogWithoutCapacity scales it out from zero is unknown",
}


def permission(service: ServiceName, operation: str) -> str:
    """The IAM action of an API call: ``cloudwatch:GetMetricData`` (our service names are IAM's prefixes)."""
    return f"{service}:{operation}"


def missing_permission_warning(action: str, endpoint_name: str, consequence: str) -> str:
    """The one line a missing permission adds (also used for logs:FilterLogEvents)."""
    return (f"Missing permission {action} for endpoint {endpoint_name!r}: {consequence}; ask for {action} "
            "(tracking is not affected).")


class NotFound(Exception):
    """DescribeEndpoint said there is no such endpoint."""


class Reader:
    """Makes one status fetch's AWS calls for one endpoint and collects their warnings.

    An error never propagates (but :class:`NotFound`): the call answers None and adds one warning;
    after a problem that every other call would have too (credentials, no network, no region),
    the remaining calls are not made.
    """

    def __init__(self, ctx: Context, endpoint_name: str):
        self.ctx = ctx
        self.endpoint_name = endpoint_name
        self.warnings: list[str] = []
        self.stopped = False

    def call(self, service: ServiceName, method: str, **kwargs: Any) -> Any:
        """The response of one AWS call, or None (and a warning; a missing permission names its IAM action).

        Raises:
            NotFound: DescribeEndpoint of an endpoint that does not exist.
        """
        if self.stopped:
            return None
        client: Any = self.ctx.aws.get(service)
        operation = client.meta.method_to_api_mapping.get(method, method)
        try:
            return getattr(client, method)(**kwargs)
        except Exception as exc:
            if operation == "DescribeEndpoint" and is_missing_endpoint(exc):
                raise NotFound(str(exc)) from None
            self._note(service, operation, exc)
            return None

    def _note(self, service: ServiceName, operation: str, exc: Exception) -> None:
        name = self.endpoint_name
        problem = explain(exc, endpoint_name=name)
        consequence = WHAT.get(operation, "some fields are unknown")
        if problem.kind == "access_denied":
            note = missing_permission_warning(permission(service, operation), name, consequence)
        elif problem.kind in SAME_FOR_EVERY_CALL:
            note = f"Could not read the status of endpoint {name!r}: {problem.message}"
            self.stopped = True
        elif problem.kind == "transient":
            note = (f"Could not read {operation} for endpoint {name!r} ({consequence}): {problem.code} outlasted "
                    "botocore's retries; the next refresh tries again.")
        else:
            note = f"Could not read {operation} for endpoint {name!r} ({consequence}): {problem.message}"
        self.warnings.append(note)
        log.info("%s for endpoint %s failed: %s", operation, name, problem.message)


@dataclass
class Described:
    """What DescribeEndpoint (and its config) said."""

    status: str | None = None
    failure_reason: str | None = None
    config_name: str | None = None
    variants: list[str] = field(default_factory=list)
    current_instances: int | None = None
    desired_instances: int | None = None
    instance_type: str | None = None
    is_async: bool | None = None
    per_instance: int | None = None  # AsyncInferenceConfig.ClientConfig.MaxConcurrentInvocationsPerInstance


def _total(variants: list[dict[str, Any]], key: str) -> int | None:
    values = [v[key] for v in variants if v.get(key) is not None]
    return int(sum(values)) if values else None


def describe(reader: Reader, configs: dict[str, dict[str, Any]]) -> Described:
    """DescribeEndpoint, and DescribeEndpointConfig unless ``configs`` already holds its config.

    Raises:
        NotFound: there is no such endpoint.
    """
    found = Described()
    endpoint = reader.call("sagemaker", "describe_endpoint", EndpointName=reader.endpoint_name)
    if endpoint is None:
        return found
    variants = list(endpoint.get("ProductionVariants") or [])
    found.status = endpoint.get("EndpointStatus")
    found.failure_reason = endpoint.get("FailureReason")
    found.config_name = endpoint.get("EndpointConfigName")
    found.variants = [v["VariantName"] for v in variants if v.get("VariantName")]
    found.current_instances = _total(variants, "CurrentInstanceCount")
    found.desired_instances = _total(variants, "DesiredInstanceCount")
    config = configs.get(found.config_name or "")
    if config is None and found.config_name:
        config = reader.call("sagemaker", "describe_endpoint_config", EndpointConfigName=found.config_name)
        if config is not None:
            config = {"AsyncInferenceConfig": config.get("AsyncInferenceConfig"),
                      "ProductionVariants": config.get("ProductionVariants") or []}
            configs[found.config_name] = config
    if config is not None:
        found.is_async = bool(config.get("AsyncInferenceConfig"))
        client_config = (config.get("AsyncInferenceConfig") or {}).get("ClientConfig") or {}
        found.per_instance = client_config.get("MaxConcurrentInvocationsPerInstance")
        types = sorted({v["InstanceType"] for v in config["ProductionVariants"] if v.get("InstanceType")})
        found.instance_type = ", ".join(types) or None
        if not found.variants:  # not reported yet (e.g. still Creating): the config's
            found.variants = [v["VariantName"] for v in config["ProductionVariants"] if v.get("VariantName")]
        if found.desired_instances is None:  # not reported yet (e.g. still Creating): what it asks for
            found.desired_instances = _total(config["ProductionVariants"], "InitialInstanceCount")
    return found


@dataclass
class Metrics:
    """The newest datapoint of each backlog metric (None: no datapoint in the window, or unreadable)."""

    backlog: float | None = None
    backlog_per_instance: float | None = None
    oldest_request_age_s: float | None = None
    has_backlog_without_capacity: bool | None = None
    at: float | None = None


def metrics(reader: Reader, now: float) -> Metrics:
    """One GetMetricData call for the four metrics of the endpoint (its window on AWS's clock, which the
    notebook's ``now`` may be off from; ``at`` back on the notebook's)."""
    name = reader.endpoint_name
    clock = reader.ctx.aws.s3_clock
    end = dt.datetime.fromtimestamp(now + (clock.offset() or 0.0), dt.timezone.utc)
    queries: Any = [{
        "Id": query_id,
        "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                                  "Dimensions": [{"Name": "EndpointName", "Value": name}]},
                       "Period": METRICS_PERIOD_S, "Stat": "Maximum" if metric == NO_CAPACITY_METRIC else "Average"},
        "ReturnData": True,
    } for query_id, metric in METRICS.items()]
    answer = reader.call("cloudwatch", "get_metric_data", MetricDataQueries=queries,
                         StartTime=end - dt.timedelta(seconds=METRICS_WINDOW_S), EndTime=end + dt.timedelta(seconds=60),
                         ScanBy="TimestampDescending")
    found = Metrics()
    if answer is None:
        return found
    latest: dict[str, float] = {}
    times: list[float] = []
    for result in answer.get("MetricDataResults", []):
        points = list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
        if points:
            when, value = max(points, key=lambda p: p[0])
            latest[result["Id"]] = float(value)
            times.append(when.timestamp())
    found.backlog = latest.get("backlog")
    found.backlog_per_instance = latest.get("per_instance")
    found.oldest_request_age_s = latest.get("oldest_age")
    if "no_capacity" in latest:
        found.has_backlog_without_capacity = latest["no_capacity"] > 0
    found.at = clock.to_local(max(times)) if times else None
    return found


@dataclass
class Scaling:
    """The scalable targets of the endpoint's variants and whether something scales them out from 0."""

    min_capacity: int | None = None
    max_capacity: int | None = None
    scales_from_zero: bool | None = None


def scaling(reader: Reader, variants: list[str]) -> Scaling:
    """DescribeScalableTargets (one call for all variants); for variants with MinCapacity 0, their
    policies and one DescribeAlarmsForMetric on HasBacklogWithoutCapacity."""
    name = reader.endpoint_name
    found = Scaling()
    if not variants:
        return found
    answer = reader.call("application-autoscaling", "describe_scalable_targets", ServiceNamespace="sagemaker",
                         ResourceIds=[resource_id(name, v) for v in variants], ScalableDimension=SCALABLE_DIMENSION)
    if answer is None:
        return found
    targets = answer.get("ScalableTargets", [])
    if not targets:
        found.scales_from_zero = False  # no autoscaling at all: nothing ever changes the instance count
        return found
    found.min_capacity = sum(int(t["MinCapacity"]) for t in targets)
    found.max_capacity = sum(int(t["MaxCapacity"]) for t in targets)
    at_zero = [t["ResourceId"] for t in targets if int(t["MinCapacity"]) == 0]
    if not at_zero:
        found.scales_from_zero = False
        return found
    policies: list[dict[str, Any]] = []
    for rid in at_zero:
        page = reader.call("application-autoscaling", "describe_scaling_policies", ServiceNamespace="sagemaker",
                           ResourceId=rid, ScalableDimension=SCALABLE_DIMENSION)
        if page is None:
            return found
        policies += page.get("ScalingPolicies", [])
    if not policies:
        found.scales_from_zero = False
        return found
    alarms = reader.call("cloudwatch", "describe_alarms_for_metric", MetricName=NO_CAPACITY_METRIC,
                         Namespace=NAMESPACE, Dimensions=[{"Name": "EndpointName", "Value": name}])
    if alarms is None:
        return found
    found.scales_from_zero = reacts_to_no_capacity(policies, alarms.get("MetricAlarms", []))
    return found


def reacts_to_no_capacity(policies: list[dict[str, Any]], alarms: list[dict[str, Any]]) -> bool:
    """Whether an enabled alarm on HasBacklogWithoutCapacity triggers one of ``policies`` (its
    AlarmActions name the policy ARN, or the policy lists the alarm)."""
    arns = {p["PolicyARN"] for p in policies if p.get("PolicyARN")}
    listed = {a.get("AlarmName") for p in policies for a in p.get("Alarms", [])}
    for alarm in alarms:
        if alarm.get("ActionsEnabled") is False:
            continue
        if arns & set(alarm.get("AlarmActions", [])) or alarm.get("AlarmName") in listed:
            return True
    return False
