"""The names AWS gives what SPEC §10 and §20 read (and the local stack writes): one place for both."""

from __future__ import annotations

NAMESPACE = "AWS/SageMaker"                               # CloudWatch namespace of the backlog metrics
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
NO_CAPACITY_METRIC = "HasBacklogWithoutCapacity"          # what a scale-from-zero step policy's alarm watches
DEFAULT_VARIANT = "AllTraffic"

# A routing target's destination, as DescribeInferenceRouter reports it (botocore's RoutingStatus enum).
ROUTABLE, UNROUTABLE, ROUTING_UNKNOWN = "Routable", "Unroutable", "Unknown"
LOCAL_REGION_FIRST, INSTANCE_POOL_ORDER = "LocalRegionFirst", "InstancePoolOrder"  # RoutingPreference
ROUTER_RUNTIME_SERVICE = "sagemaker-inference-router-runtime"  # boto3's name of InvokeInferenceRouterAsync's service


def resource_id(endpoint_name: str, variant: str = DEFAULT_VARIANT) -> str:
    """Application Auto Scaling's ResourceId of an endpoint variant."""
    return f"endpoint/{endpoint_name}/variant/{variant}"


def log_group(endpoint_name: str) -> str:
    """The CloudWatch Logs group SageMaker writes an endpoint's container logs to."""
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def router_arn(region: str, account_id: str, name: str) -> str:
    """An inference router's ARN."""
    return f"arn:aws:sagemaker:{region}:{account_id}:inference-router/{name}"


__all__ = ["DEFAULT_VARIANT", "INSTANCE_POOL_ORDER", "LOCAL_REGION_FIRST", "NAMESPACE", "NO_CAPACITY_METRIC",
           "ROUTABLE", "ROUTER_RUNTIME_SERVICE", "ROUTING_UNKNOWN", "SCALABLE_DIMENSION", "UNROUTABLE", "log_group",
           "resource_id", "router_arn"]
