"""moto helpers the tiers share (importable as ``motokit``: pytest puts tests/ on sys.path for its conftest)."""

from __future__ import annotations

import boto3


def moto_endpoint(name: str, *, is_async: bool = True, instance_type: str = "ml.m5.large") -> None:
    """An endpoint in moto's SageMaker, made with the calls a user's notebook would make (submissions
    check that their endpoint exists before uploading anything)."""
    sm = boto3.client("sagemaker", region_name="us-east-1")
    for delete in (lambda: sm.delete_endpoint(EndpointName=name),
                   lambda: sm.delete_endpoint_config(EndpointConfigName=f"{name}-config"),
                   lambda: sm.delete_model(ModelName=f"{name}-model")):
        try:
            delete()  # a test may make the same endpoint again, its own way
        except sm.exceptions.ClientError:
            pass
    sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
                    PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1"})
    extra = {"AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://input-bucket/out/"}}} if is_async else {}
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{name}-model", "InitialInstanceCount": 1,
        "InstanceType": instance_type}], **extra)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
