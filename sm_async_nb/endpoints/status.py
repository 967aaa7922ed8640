"""``EndpointStatus``: one endpoint's state, capacity, backlog and the warnings they imply."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EndpointStatus:
    """A snapshot of one endpoint, as ``client.endpoint_status(name)`` returns it.

    Fields are None when the service gave no value (no scalable target, no datapoint yet, or a
    permission missing — the last one also adds a warning naming the permission).
    """

    name: str
    status: str | None = None                      # DescribeEndpoint EndpointStatus, e.g. "InService"
    instance_type: str | None = None
    current_instances: int | None = None
    desired_instances: int | None = None
    is_async: bool | None = None                   # the endpoint config has an AsyncInferenceConfig
    min_capacity: int | None = None                # Application Auto Scaling scalable target
    max_capacity: int | None = None
    backlog: float | None = None                   # ApproximateBacklogSize
    backlog_per_instance: float | None = None      # ApproximateBacklogSizePerInstance
    oldest_request_age_s: float | None = None      # ApproximateAgeOfOldestRequest
    has_backlog_without_capacity: bool | None = None
    scales_from_zero: bool | None = None           # MinCapacity 0 and a policy reacts to HasBacklogWithoutCapacity
    warnings: list[str] = field(default_factory=list)
    fetched_at: float = 0.0                        # time.time() of the fetch this snapshot came from
    exists: bool | None = True                     # False: DescribeEndpoint said there is no such endpoint
    failure_reason: str | None = None              # DescribeEndpoint FailureReason (a Failed endpoint)
    pending: int | None = None                     # this client's PENDING invocations on the endpoint
    drain_rate_per_min: float | None = None        # completions per minute this client saw (None: none seen)
    metrics_at: float | None = None                # time.time() of the newest CloudWatch datapoint read
    max_concurrent_per_instance: int | None = None  # AsyncInferenceConfig.ClientConfig (None: not set)

    @property
    def instances_text(self) -> str:
        """``"0/1"`` (current/desired), ``"?"`` for unknown parts."""
        def shown(n: int | None) -> str:
            return "?" if n is None else str(n)
        return f"{shown(self.current_instances)}/{shown(self.desired_instances)}"

    def lines(self) -> list[str]:
        """The snapshot as a few short lines of text (what ``%sm_async endpoint NAME`` prints)."""
        if self.exists is False:
            return [f"{self.name}: not found", *(f"  ! {w}" for w in self.warnings)]
        head = [self.status or "status unknown"]
        if self.instance_type:
            head.append(self.instance_type)
        if self.is_async is False:
            head.append("not async")
        scaling = ""
        if self.min_capacity is not None or self.max_capacity is not None:
            scaling = f" (autoscaling {self.min_capacity}..{self.max_capacity}"
            scaling += ", scales from zero)" if self.scales_from_zero else ")"
        elif self.scales_from_zero is False:
            scaling = " (no autoscaling)"
        out = [f"{self.name}: {', '.join(head)}; instances {self.instances_text} current/desired{scaling}"]
        metrics = []
        if self.backlog is not None:
            per = "" if self.backlog_per_instance is None else f" ({self.backlog_per_instance:g} per instance)"
            metrics.append(f"backlog {self.backlog:g}{per}")
        if self.oldest_request_age_s is not None:
            metrics.append(f"oldest request {self.oldest_request_age_s:.0f} s")
        if self.has_backlog_without_capacity is not None:
            metrics.append(f"HasBacklogWithoutCapacity {'yes' if self.has_backlog_without_capacity else 'no'}")
        out.append("  " + ("; ".join(metrics) if metrics else "no backlog metrics in the last 10 minutes"))
        if self.pending:
            rate = "" if self.drain_rate_per_min is None else f", ~{self.drain_rate_per_min:.3g} completions/min seen"
            out.append(f"  {self.pending} pending invocation(s) of yours{rate}")
        out += [f"  ! {w}" for w in self.warnings]
        return out


@dataclass(frozen=True)
class EndpointSample:
    """One point of an endpoint's history: what one status fetch saw (instances, the CloudWatch
    backlog, this client's pending invocations), at the fetch's time."""

    at: float
    current_instances: int | None
    desired_instances: int | None
    backlog: float | None
    pending: int | None

    @classmethod
    def of(cls, status: EndpointStatus) -> EndpointSample:
        return cls(status.fetched_at, status.current_instances, status.desired_instances, status.backlog,
                   status.pending)


__all__ = ["EndpointSample", "EndpointStatus"]
