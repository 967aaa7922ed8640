"""The scaling registered in the emulated Application Auto Scaling drives the fleet, and every
endpoint's backlog metrics go to the emulated CloudWatch (SPEC §10, §17).

Whoever registered them — plain boto3, the AWS CLI, the stack's own ``min_instances`` options
(``provision.py``) — the scaler reads the scalable targets of ``sagemaker:variant:DesiredInstanceCount``,
their scaling policies and the CloudWatch alarms that trigger them, and acts as the services do:

* the desired count is kept between MinCapacity and MaxCapacity (registering a target moves it
  into the range, as AWS does);
* a **step scaling** policy runs when an alarm naming it in AlarmActions has been in breach for
  its evaluation time (DatapointsToAlarm, else EvaluationPeriods, periods of ``Period`` seconds),
  applying the step whose interval holds ``metric - threshold`` (ChangeInCapacity,
  ExactCapacity, PercentChangeInCapacity), no sooner than its Cooldown after its last action —
  e.g. an alarm on ``HasBacklogWithoutCapacity`` scaling out from zero;
* a **target tracking** policy on a customized metric specification of the endpoint's metrics
  (``ApproximateBacklogSizePerInstance``, as AWS's async-inference documentation shows) sets
  ``ceil(capacity x metric / target)``: out when the metric was above the target for 3 periods,
  in when below 90 % of it for 15 (the alarms AWS makes for it), with ScaleOutCooldown and
  ScaleInCooldown (300 s when unset); it never acts at 0 instances (the metric has no meaning
  there — hence the step policy above).

A "period" is ``metrics_period_seconds`` (the stack's CloudWatch minute: a ``Period`` of 60 s is
one of them), and every duration is on the emulated clock (``time_scale``). Alarms the stack
registered for its own options fire after the hold the stack gives them (:meth:`Scaler.hold`:
``scale_out_seconds``, ``scale_in_idle_seconds``). Metrics are the live values: the backlog is
what is queued or running. Registrations are read again only when someone wrote to Application
Auto Scaling or CloudWatch (:meth:`Scaler.refresh`), never polled.

Every ``metrics_period_seconds`` the scaler puts ``ApproximateBacklogSize``,
``ApproximateBacklogSizePerInstance``, ``ApproximateAgeOfOldestRequest`` and
``HasBacklogWithoutCapacity`` (namespace ``AWS/SageMaker``, dimension ``EndpointName``) for each
served async endpoint. :meth:`Scaler.step` does one pass at a given clock reading (tests drive
it); the stack's thread calls it every 200 ms.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from ...contract.names import NAMESPACE, NO_CAPACITY_METRIC, SCALABLE_DIMENSION
from .models import Backend

log = logging.getLogger(__name__)

BACKLOG, PER_INSTANCE, OLDEST = "ApproximateBacklogSize", "ApproximateBacklogSizePerInstance", \
    "ApproximateAgeOfOldestRequest"
METRICS = (BACKLOG, PER_INSTANCE, OLDEST, NO_CAPACITY_METRIC)
UNITS = {BACKLOG: "Count", PER_INSTANCE: "Count", OLDEST: "Seconds", NO_CAPACITY_METRIC: "Count"}
DEFAULT_COOLDOWN = 300.0  # Application Auto Scaling's, when a policy sets none
TRACKING_OUT_PERIODS, TRACKING_IN_PERIODS, TRACKING_IN_FRACTION = 3, 15, 0.9
GREATER = ("GreaterThanOrEqualToThreshold", "GreaterThanThreshold")
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t, "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t, "LessThanOrEqualToThreshold": lambda v, t: v <= t}


class FleetControl(Protocol):
    """What the scaler drives (``lifecycle.py``'s Lifecycle)."""

    def fleets(self) -> list[Any]: ...

    def set_desired(self, name: str, variant: str, count: int) -> None: ...


@dataclass(frozen=True)
class Alarm:
    name: str
    metric: str
    endpoint: str
    comparison: str
    threshold: float
    periods: int  # of the stack's metric period, before it fires


@dataclass(frozen=True)
class Step:
    lower: float | None
    upper: float | None
    adjustment: int


@dataclass(frozen=True)
class StepPolicy:
    arn: str
    adjustment_type: str
    steps: tuple[Step, ...]
    cooldown: float
    min_magnitude: int
    alarms: tuple[Alarm, ...]


@dataclass(frozen=True)
class TargetTracking:
    arn: str
    metric: str
    endpoint: str
    target: float
    out_cooldown: float
    in_cooldown: float
    disable_scale_in: bool


@dataclass(frozen=True)
class Target:
    """One registered scalable target and its policies."""

    endpoint: str
    variant: str
    min_capacity: int
    max_capacity: int
    steps: tuple[StepPolicy, ...] = ()
    tracking: tuple[TargetTracking, ...] = ()


class Scaler:
    """See the module docstring."""

    def __init__(self, backend: Backend, fleet: FleetControl, clients: dict[str, Any], metrics_period: float,
                 clock: Callable[[], float], wall: Callable[[], float] = time.time):
        self.backend, self.fleet, self.clients = backend, fleet, clients
        self.metrics_period, self.clock, self.wall = metrics_period, clock, wall
        self._targets: list[Target] = []
        self._dirty = threading.Event()
        self._holds: dict[str, float] = {}  # the stack's own alarms: seconds in breach before they fire
        self._since: dict[tuple[str, ...], float] = {}  # a condition's first breach
        self._last: dict[tuple[str, ...], float] = {}  # a policy's last action (cooldowns)
        self._last_metrics: float | None = None
        self._skipped: set[str] = set()  # unsupported registrations already logged

    def hold(self, alarm_name: str, seconds: float) -> None:
        """Fire the stack's own alarm ``alarm_name`` after ``seconds`` in breach (not its periods)."""
        self._holds[alarm_name] = seconds
        self.refresh()

    def refresh(self) -> None:
        """Read the registrations again on the next step (someone wrote to them)."""
        self._dirty.set()

    # -- reading what is registered ------------------------------------------------------------------
    def _load(self) -> None:
        aas, cw = self.clients["application-autoscaling"], self.clients["cloudwatch"]
        found = _pages(aas, "describe_scalable_targets", "ScalableTargets", ServiceNamespace="sagemaker")
        policies = _pages(aas, "describe_scaling_policies", "ScalingPolicies", ServiceNamespace="sagemaker")
        alarms = _pages(cw, "describe_alarms", "MetricAlarms")
        by_action: dict[str, list[Alarm]] = {}
        for raw in alarms:
            alarm = self._alarm(raw)
            if alarm is not None:
                for action in raw.get("AlarmActions") or []:
                    by_action.setdefault(action, []).append(alarm)
        targets = []
        for raw in found:
            parts = str(raw.get("ResourceId", "")).split("/")
            if raw.get("ScalableDimension") != SCALABLE_DIMENSION or len(parts) != 4 or parts[0] != "endpoint":
                continue
            mine = [p for p in policies if p.get("ResourceId") == raw["ResourceId"]
                    and p.get("ScalableDimension") == SCALABLE_DIMENSION]
            targets.append(Target(parts[1], parts[3], int(raw["MinCapacity"]), int(raw["MaxCapacity"]),
                                  steps=tuple(self._steps(p, by_action) for p in mine if p.get("PolicyType") ==
                                              "StepScaling"),
                                  tracking=tuple(t for t in (self._tracking(p, parts[1]) for p in mine
                                                             if p.get("PolicyType") == "TargetTrackingScaling")
                                                 if t is not None)))
        self._targets = targets

    def _alarm(self, raw: dict[str, Any]) -> Alarm | None:
        dims = {d.get("Name"): d.get("Value") for d in raw.get("Dimensions") or []}
        if raw.get("Namespace") != NAMESPACE or raw.get("MetricName") not in METRICS or "EndpointName" not in dims \
                or raw.get("ComparisonOperator") not in COMPARE:
            if any(":scalingPolicy:" in str(action) for action in raw.get("AlarmActions") or []):
                self._skip(f"alarm {raw.get('AlarmName')}", "only alarms on the AWS/SageMaker backlog metrics of an "
                                                            "EndpointName, with a plain threshold, are evaluated")
            return None
        periods = int(raw.get("DatapointsToAlarm") or raw.get("EvaluationPeriods") or 1)
        return Alarm(raw["AlarmName"], raw["MetricName"], str(dims["EndpointName"]), raw["ComparisonOperator"],
                     float(raw.get("Threshold", 0.0)), periods * max(1, math.ceil(int(raw.get("Period") or 60) / 60)))

    @staticmethod
    def _steps(raw: dict[str, Any], by_action: dict[str, list[Alarm]]) -> StepPolicy:
        config = raw.get("StepScalingPolicyConfiguration") or {}
        steps = tuple(Step(s.get("MetricIntervalLowerBound"), s.get("MetricIntervalUpperBound"),
                           int(s["ScalingAdjustment"])) for s in config.get("StepAdjustments") or [])
        cooldown = config.get("Cooldown")
        return StepPolicy(raw["PolicyARN"], config.get("AdjustmentType", "ChangeInCapacity"), steps,
                          DEFAULT_COOLDOWN if cooldown is None else float(cooldown),
                          int(config.get("MinAdjustmentMagnitude") or 0), tuple(by_action.get(raw["PolicyARN"], ())))

    def _tracking(self, raw: dict[str, Any], endpoint: str) -> TargetTracking | None:
        config = raw.get("TargetTrackingScalingPolicyConfiguration") or {}
        metric = config.get("CustomizedMetricSpecification") or {}
        dims = {d.get("Name"): d.get("Value") for d in metric.get("Dimensions") or []}
        if metric.get("Namespace") != NAMESPACE or metric.get("MetricName") not in METRICS:
            self._skip(f"policy {raw.get('PolicyName')}", "target tracking is emulated on a customized metric "
                                                          f"specification of {', '.join(METRICS)} only")
            return None
        out_cooldown, in_cooldown = config.get("ScaleOutCooldown"), config.get("ScaleInCooldown")
        return TargetTracking(raw["PolicyARN"], metric["MetricName"], str(dims.get("EndpointName") or endpoint),
                              float(config["TargetValue"]),
                              DEFAULT_COOLDOWN if out_cooldown is None else float(out_cooldown),
                              DEFAULT_COOLDOWN if in_cooldown is None else float(in_cooldown),
                              bool(config.get("DisableScaleIn")))

    def _skip(self, what: str, why: str) -> None:
        if what not in self._skipped:
            self._skipped.add(what)
            log.warning("the local stack does not emulate %s: %s", what, why)

    # -- acting ----------------------------------------------------------------------------------------
    def step(self, now: float | None = None) -> None:
        """Scale every registered target and put the metrics, as of emulated clock reading ``now``."""
        now = self.clock() if now is None else now
        if self._dirty.is_set():
            self._dirty.clear()
            try:
                self._load()
            except Exception:
                self._dirty.set()
                raise
        fleets = {f.name: f for f in self.fleet.fleets()}
        values: dict[str, dict[str, float]] = {}

        def metrics_of(name: str) -> dict[str, float] | None:
            if name not in fleets:
                return None
            if name not in values:
                values[name] = self._values(name, fleets[name].current, now)
            return values[name]

        for target in self._targets:
            fleet = fleets.get(target.endpoint)
            if fleet is None or fleet.variant != target.variant:
                continue
            wanted = self._decide(target, fleet.desired, metrics_of, now)
            if wanted is not None and wanted != fleet.desired:
                log.info("scaling endpoint %s from %d to %d instance(s)", fleet.name, fleet.desired, wanted)
                self.fleet.set_desired(fleet.name, fleet.variant, wanted)
        if self._last_metrics is None or now - self._last_metrics >= self.metrics_period:
            self._last_metrics = now
            for name in fleets:
                self.put_metrics(name, metrics_of(name) or {})

    def _decide(self, target: Target, current: int, metrics_of: Callable[[str], dict[str, float] | None],
                now: float) -> int | None:
        def bounded(count: int) -> int:
            return min(max(count, target.min_capacity), target.max_capacity)

        if bounded(current) != current:
            return bounded(current)
        for policy in target.steps:
            for alarm in policy.alarms:
                found = metrics_of(alarm.endpoint)
                if found is None:
                    continue
                value = found[alarm.metric]
                hold = self._holds.get(alarm.name, alarm.periods * self.metrics_period)
                if not self._held((alarm.name,), COMPARE[alarm.comparison](value, alarm.threshold), hold, now):
                    continue
                if now - self._last.get((policy.arn,), -math.inf) < policy.cooldown:
                    continue
                step = _matching(policy.steps, value - alarm.threshold, alarm.comparison in GREATER)
                if step is None:
                    continue
                wanted = bounded(_adjusted(policy.adjustment_type, current, step.adjustment, policy.min_magnitude))
                if wanted != current:
                    self._last[(policy.arn,)] = now
                    return wanted
        for tracking in target.tracking:
            found = metrics_of(tracking.endpoint)
            if found is None or current == 0:
                continue
            value = found[tracking.metric]
            wanted = bounded(math.ceil(current * value / tracking.target - 1e-9)) if tracking.target > 0 else current
            out = self._held((tracking.arn, "out"), value > tracking.target and wanted > current,
                             TRACKING_OUT_PERIODS * self.metrics_period, now)
            scale_in = self._held((tracking.arn, "in"), value < TRACKING_IN_FRACTION * tracking.target
                                  and wanted < current and not tracking.disable_scale_in,
                                  TRACKING_IN_PERIODS * self.metrics_period, now)
            for direction, due, cooldown in (("out", out, tracking.out_cooldown), ("in", scale_in,
                                                                                     tracking.in_cooldown)):
                if due and now - self._last.get((tracking.arn, direction), -math.inf) >= cooldown:
                    self._last[(tracking.arn, direction)] = now
                    return wanted
        return None

    def _held(self, key: tuple[str, ...], breached: bool, hold: float, now: float) -> bool:
        """Whether ``key``'s condition has been in breach for ``hold`` seconds, as of ``now``."""
        if not breached:
            self._since.pop(key, None)
            return False
        return now - self._since.setdefault(key, now) >= hold

    def _values(self, name: str, instances: int, now: float) -> dict[str, float]:
        queued = self.backend.queued(name)
        backlog = len(queued) + len(self.backend.running(name))
        return {BACKLOG: float(backlog), PER_INSTANCE: backlog / max(1, instances),
                OLDEST: max((now - inv.received_clock for inv in queued), default=0.0),
                NO_CAPACITY_METRIC: 1.0 if backlog and instances == 0 else 0.0}

    def put_metrics(self, name: str, values: dict[str, float]) -> None:
        """The four backlog metrics of one endpoint."""
        stamp = datetime.fromtimestamp(self.wall(), timezone.utc)
        try:
            self.clients["cloudwatch"].put_metric_data(Namespace=NAMESPACE, MetricData=[
                {"MetricName": metric, "Dimensions": [{"Name": "EndpointName", "Value": name}],
                 "Timestamp": stamp, "Value": float(value), "Unit": UNITS[metric]}
                for metric, value in values.items()])
        except Exception:
            log.exception("could not put the metrics of %s", name)

    def run(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Thread body: step until ``stop`` is set."""
        while not stop.wait(interval):
            try:
                self.step()
            except Exception:
                log.exception("local stack scaler step failed")


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    if client.can_paginate(operation):
        return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]
    return list(getattr(client, operation)(**kwargs).get(key, []))


def _matching(steps: tuple[Step, ...], difference: float, above: bool) -> Step | None:
    """The step whose interval holds ``difference`` (metric - threshold): lower bound inclusive for
    an alarm above its threshold, upper bound inclusive for one below it (Application Auto Scaling's rule)."""
    for step in steps:
        low = step.lower is None or (difference >= step.lower if above else difference > step.lower)
        high = step.upper is None or (difference < step.upper if above else difference <= step.upper)
        if low and high:
            return step
    return None


def _adjusted(kind: str, current: int, adjustment: int, min_magnitude: int) -> int:
    if kind == "ExactCapacity":
        return adjustment
    if kind == "PercentChangeInCapacity":
        change = current * adjustment / 100
        change = math.ceil(change) if change > 0 else math.floor(change)  # away from zero
        if min_magnitude and abs(change) < min_magnitude:
            change = int(math.copysign(min_magnitude, adjustment))
        return current + int(change)
    return current + adjustment
