"""What a running stack tells its users: where it listens and what it made (one record, whichever
process hosts the stack). The environment lines and boto3 endpoint URLs are derived from it."""

from __future__ import annotations

from dataclasses import dataclass

from ..contract.names import ROUTER_RUNTIME_SERVICE
from .settings import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, http_url

MOTO_SERVICES = ("s3", "sagemaker", "sns", "sqs", "sts", "cloudwatch", "application-autoscaling", "logs")
RUNTIME_SERVICES = ("sagemaker-runtime", ROUTER_RUNTIME_SERVICE)  # served by the stack's runtime server
ENV_NAMES = {"s3": "S3", "sagemaker": "SAGEMAKER", "sagemaker-runtime": "SAGEMAKER_RUNTIME", "sns": "SNS",
             "sqs": "SQS", "sts": "STS", "cloudwatch": "CLOUDWATCH",
             "application-autoscaling": "APPLICATION_AUTO_SCALING", "logs": "CLOUDWATCH_LOGS",
             ROUTER_RUNTIME_SERVICE: "SAGEMAKER_INFERENCE_ROUTER_RUNTIME"}


@dataclass
class StackInfo:
    """A running stack: the process hosting it, its ports, region, bucket and first endpoint."""

    pid: int
    host: str
    moto_port: int
    runtime_port: int
    region: str
    endpoint_name: str
    input_bucket: str
    output_path: str
    failure_path: str
    time_scale: float = 1.0  # emulated seconds per real second (the client's TTL arithmetic needs it)

    @property
    def runtime_url(self) -> str:
        """The runtime's URL (the control namespace lives there too)."""
        return http_url(self.host, self.runtime_port)

    @property
    def endpoint_urls(self) -> dict[str, str]:
        """endpoint_url per boto3 service name."""
        moto = http_url(self.host, self.moto_port)
        return {**dict.fromkeys(MOTO_SERVICES, moto), **dict.fromkeys(RUNTIME_SERVICES, self.runtime_url)}

    @property
    def env(self) -> dict[str, str]:
        """Environment variables pointing any AWS SDK or the AWS CLI at the stack."""
        urls = self.endpoint_urls
        return {**{f"AWS_ENDPOINT_URL_{ENV_NAMES[service]}": urls[service] for service in ENV_NAMES},
                "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region,
                "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
                "SM_ASYNC_NB_S3_INPUT_PATH": f"s3://{self.input_bucket}/inputs/"}
