"""``EndpointStatus``: one endpoint's state, capacity, backlog and the warnings they imply."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


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


__all__ = ["EndpointStatus"]
