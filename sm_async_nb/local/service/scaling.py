"""Emulated instance counts, scale from zero, and the endpoint's CloudWatch metrics (SPEC §10).

What the real service does, in the stack's terms:

* an endpoint has ``instances`` (0 .. ``max_instances``); its concurrency is
  MaxConcurrentInvocationsPerInstance x instances, so at 0 requests wait in the backlog (and
  expire by RequestTTLSeconds, as on AWS);
* a step scaling policy on the ``HasBacklogWithoutCapacity`` alarm adds an instance after
  ``scale_out_seconds`` with a backlog and no instance (``None``: no policy, requests wait);
* after ``scale_in_idle_seconds`` without a backlog it scales back to ``min_instances``;
* every ``metrics_period_seconds`` it puts ``ApproximateBacklogSize``,
  ``ApproximateBacklogSizePerInstance``, ``ApproximateAgeOfOldestRequest`` and
  ``HasBacklogWithoutCapacity`` (namespace ``AWS/SageMaker``, dimension ``EndpointName``).

The scalable target, the policy and the alarm are registered in moto's Application Auto Scaling
and CloudWatch, and DescribeEndpoint's CurrentInstanceCount/DesiredInstanceCount follow the
count, all through ordinary boto3 calls, so any AWS client reads them back. Every duration is on
the stack's emulated clock (``time_scale``). :meth:`Scaler.step` does one pass at a given clock
reading (tests drive it); the stack's thread calls it every few hundred milliseconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ...contract.names import NAMESPACE, NO_CAPACITY_METRIC, SCALABLE_DIMENSION, resource_id
from .models import Backend, Endpoint

log = logging.getLogger(__name__)

ALARM_METRIC = NO_CAPACITY_METRIC


@dataclass(frozen=True)
class ScalingSettings:
    """The stack's scaling options (names fixed by SPEC §10; checked by ``StackConfig``)."""

    min_instances: int = 1
    max_instances: int = 1
    scale_out_seconds: float | None = 0.0
    scale_in_idle_seconds: float | None = None
    metrics_period_seconds: float = 60.0


@dataclass
class _State:
    endpoint: Endpoint
    per_instance: int
    max_instances: int
    instances: int
    backlog_since: float | None = None
    idle_since: float | None = None


class Scaler:
    """Keeps each endpoint's instance count and metrics; see the module docstring."""

    def __init__(self, backend: Backend, clients: dict[str, Any], settings: ScalingSettings,
                 clock: Callable[[], float], wall: Callable[[], float] = time.time):
        self.backend, self.clients, self.settings = backend, clients, settings
        self.clock, self.wall = clock, wall
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._last_metrics: float | None = None

    def register(self, endpoint: Endpoint, per_instance: int, initial: int) -> None:
        """Register the scalable target (and the policy and alarm) and set the starting count.

        Args:
            endpoint: the runtime's endpoint (its ``concurrency``/``instances`` follow the count).
            per_instance: MaxConcurrentInvocationsPerInstance.
            initial: the endpoint config's InitialInstanceCount.
        """
        s = self.settings
        top = max(s.max_instances, initial)
        autoscaling, cloudwatch = self.clients["application-autoscaling"], self.clients["cloudwatch"]
        autoscaling.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource_id(endpoint.name),
                                             ScalableDimension=SCALABLE_DIMENSION,
                                             MinCapacity=s.min_instances, MaxCapacity=top)
        if s.scale_out_seconds is not None:
            policy = autoscaling.put_scaling_policy(
                PolicyName=f"{endpoint.name}-scale-out-from-zero", ServiceNamespace="sagemaker",
                ResourceId=resource_id(endpoint.name), ScalableDimension=SCALABLE_DIMENSION,
                PolicyType="StepScaling", StepScalingPolicyConfiguration={
                    "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average",
                    "Cooldown": int(s.scale_out_seconds),
                    "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]})
            cloudwatch.put_metric_alarm(
                AlarmName=f"{endpoint.name}-{ALARM_METRIC}", Namespace=NAMESPACE, MetricName=ALARM_METRIC,
                Dimensions=[{"Name": "EndpointName", "Value": endpoint.name}], Statistic="Average",
                Period=max(10, int(s.metrics_period_seconds)), EvaluationPeriods=1, Threshold=1.0,
                ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing",
                AlarmActions=[policy["PolicyARN"]])
        start = 0 if s.min_instances == 0 else max(initial, s.min_instances)
        with self._lock:
            self._states[endpoint.name] = _State(endpoint, per_instance, top, start)
        self._apply(endpoint.name, start)

    def instances(self, endpoint_name: str) -> int | None:
        """The endpoint's emulated instance count (None for an endpoint without scaling)."""
        with self._lock:
            state = self._states.get(endpoint_name)
            return None if state is None else state.instances

    def _apply(self, name: str, count: int) -> None:
        with self._lock:
            state = self._states[name]
            state.instances = count
            state.endpoint.concurrency = state.per_instance * count
            state.endpoint.instances = count
        self.clients["sagemaker"].update_endpoint_weights_and_capacities(
            EndpointName=name, DesiredWeightsAndCapacities=[
                {"VariantName": "AllTraffic", "DesiredWeight": 1.0, "DesiredInstanceCount": count}])
        self.backend.notify()
        log.info("endpoint %s now has %d instance(s)", name, count)

    def step(self, now: float | None = None) -> None:
        """Scale out/in and put metrics as of emulated clock reading ``now``."""
        now = self.clock() if now is None else now
        with self._lock:
            states = list(self._states.values())
        for state in states:
            name = state.endpoint.name
            backlog = len(self.backend.queued(name)) + len(self.backend.running(name))
            target = self._decide(state, backlog, now)
            if target is not None:
                self._apply(name, target)
        period = self.settings.metrics_period_seconds
        if self._last_metrics is None or now - self._last_metrics >= period:
            self._last_metrics = now
            for state in states:
                self.put_metrics(state, now)

    def _decide(self, state: _State, backlog: int, now: float) -> int | None:
        s = self.settings
        state.backlog_since = (now if state.backlog_since is None else state.backlog_since) \
            if backlog and state.instances == 0 else None
        state.idle_since = (now if state.idle_since is None else state.idle_since) if not backlog else None
        if (state.backlog_since is not None and s.scale_out_seconds is not None
                and now - state.backlog_since >= s.scale_out_seconds):
            state.backlog_since = None
            return min(state.max_instances, 1)
        if (state.idle_since is not None and s.scale_in_idle_seconds is not None
                and state.instances > s.min_instances and now - state.idle_since >= s.scale_in_idle_seconds):
            return s.min_instances
        return None

    def put_metrics(self, state: _State, now: float) -> None:
        """The four backlog metrics of one endpoint, now."""
        name = state.endpoint.name
        queued = self.backend.queued(name)
        backlog = len(queued) + len(self.backend.running(name))
        oldest = max((now - inv.received_clock for inv in queued), default=0.0)
        values = {"ApproximateBacklogSize": (backlog, "Count"),
                  "ApproximateBacklogSizePerInstance": (backlog / max(1, state.instances), "Count"),
                  "ApproximateAgeOfOldestRequest": (oldest, "Seconds"),
                  ALARM_METRIC: (1.0 if backlog and state.instances == 0 else 0.0, "Count")}
        stamp = datetime.fromtimestamp(self.wall(), timezone.utc)
        try:
            self.clients["cloudwatch"].put_metric_data(Namespace=NAMESPACE, MetricData=[
                {"MetricName": metric, "Dimensions": [{"Name": "EndpointName", "Value": name}],
                 "Timestamp": stamp, "Value": float(value), "Unit": unit}
                for metric, (value, unit) in values.items()])
        except Exception:
            log.exception("could not put the metrics of %s", name)

    def run(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Thread body: step until ``stop`` is set."""
        while not stop.wait(interval):
            try:
                self.step()
            except Exception:
                log.exception("local stack scaler step failed")
