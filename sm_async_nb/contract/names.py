"""The names AWS gives what SPEC §10 reads (and the local stack writes): one place for both."""

from __future__ import annotations

NAMESPACE = "AWS/SageMaker"                               # CloudWatch namespace of the backlog metrics
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
NO_CAPACITY_METRIC = "HasBacklogWithoutCapacity"          # what a scale-from-zero step policy's alarm watches
DEFAULT_VARIANT = "AllTraffic"


def resource_id(endpoint_name: str, variant: str = DEFAULT_VARIANT) -> str:
    """Application Auto Scaling's ResourceId of an endpoint variant."""
    return f"endpoint/{endpoint_name}/variant/{variant}"


def log_group(endpoint_name: str) -> str:
    """The CloudWatch Logs group SageMaker writes an endpoint's container logs to."""
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


__all__ = ["DEFAULT_VARIANT", "NAMESPACE", "NO_CAPACITY_METRIC", "SCALABLE_DIMENSION",
           "log_group", "resource_id"]
