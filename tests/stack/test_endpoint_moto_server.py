"""Endpoint awareness over HTTP: every AWS call of client.endpoint_status and inv.logs() against a moto
server (the wire protocols botocore really speaks to CloudWatch, Logs and Application Auto Scaling),
with the endpoint's data written by plain boto3 clients."""

from __future__ import annotations

import datetime as dt
import time

import boto3

import sm_async_nb as sma
from sm_async_nb.records import InvocationRecord, Status


def plain(service: str):
    return boto3.client(service, region_name="us-east-1")


def test_status_and_logs_over_http_against_a_moto_server(moto_server, monkeypatch, tmp_path):
    from moto.sagemaker.models import sagemaker_backends

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)  # every boto3 client of this test, ours included

    plain("s3").create_bucket(Bucket="input-bucket")
    sm = plain("sagemaker")
    sm.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
                    PrimaryContainer={"Image": "123.dkr.ecr.us-east-1.amazonaws.com/model:1"})
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://input-bucket/out/"}})
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    # The server runs in this process: scale the endpoint to zero the way SageMaker would show it.
    variant = sagemaker_backends["123456789012"]["us-east-1"].endpoints["ep"].production_variants[0]
    variant["CurrentInstanceCount"] = variant["DesiredInstanceCount"] = 0
    plain("application-autoscaling").register_scalable_target(
        ServiceNamespace="sagemaker", ResourceId="endpoint/ep/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", MinCapacity=0, MaxCapacity=2)
    plain("cloudwatch").put_metric_data(Namespace="AWS/SageMaker", MetricData=[
        {"MetricName": m, "Dimensions": [{"Name": "EndpointName", "Value": "ep"}], "Value": v,
         "Timestamp": dt.datetime.now(dt.timezone.utc)}
        for m, v in (("ApproximateBacklogSize", 4), ("ApproximateAgeOfOldestRequest", 75),
                     ("HasBacklogWithoutCapacity", 1))])
    logs = plain("logs")
    logs.create_log_group(logGroupName="/aws/sagemaker/Endpoints/ep")
    logs.create_log_stream(logGroupName="/aws/sagemaker/Endpoints/ep", logStreamName="AllTraffic/i-1")
    logs.put_log_events(logGroupName="/aws/sagemaker/Endpoints/ep", logStreamName="AllTraffic/i-1", logEvents=[
        {"timestamp": int(time.time() * 1000), "message": "failed-1: ValueError: bad row"}])

    with sma.AsyncInferenceClient("s3://input-bucket/in/", journal_path=tmp_path / "j.sqlite3") as client:
        now = time.time()
        client.journal.add([InvocationRecord("failed-1", "ep", status=Status.FAILED, origin=client.origin,
                                             invoked_at=now - 5, finished_at=now),
                            InvocationRecord("waiting-1", "ep", status=Status.PENDING, origin=client.origin,
                                             invoked_at=now - 5, deadline=now + 3600)])
        st = client.endpoint_status("ep")
        assert (st.status, st.instance_type, st.current_instances, st.is_async) == ("InService", "ml.m5.large", 0, True)
        assert (st.min_capacity, st.max_capacity, st.scales_from_zero) == (0, 2, False)
        assert (st.backlog, st.oldest_request_age_s, st.has_backlog_without_capacity) == (4.0, 75.0, True)
        [warning] = st.warnings
        assert "has 0 instances and a backlog of 4 request(s), but nothing scales it out from zero" in warning
        counts = {k: v for k, v in client.aws.counter.counts.items() if "." in k}
        assert counts == {"sagemaker.DescribeEndpoint": 1, "sagemaker.DescribeEndpointConfig": 1,
                          "cloudwatch.GetMetricData": 1, "application-auto-scaling.DescribeScalableTargets": 1,
                          "application-auto-scaling.DescribeScalingPolicies": 1}
        assert client.invocation("failed-1").logs() == ["failed-1: ValueError: bad row"]
        assert client.invocation("waiting-1").logs() == []
