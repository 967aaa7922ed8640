"""The one adapter onto moto's internals (the worker writing moto's backends directly) and its HTTP
fallback: both paths serve S3 inputs, outputs, failures and SNS; the check refuses a changed moto."""

from __future__ import annotations

import json
import logging
import time

import pytest
from stackhelp import IRIS_CSV


def test_the_installed_moto_has_what_the_adapter_needs():
    from sm_async_nb.local.motoserver.backends import check_moto

    check_moto()


@pytest.mark.parametrize("internal, replacement, named", [
    ("moto.s3.models.S3Backend.put_object", lambda self, bucket, key, body: None, "put_object"),
    ("moto.sns.models.SNSBackend.publish", lambda self, arn, message: None, "publish"),
])
def test_a_changed_moto_signature_is_refused(monkeypatch, internal, replacement, named):
    from sm_async_nb.local.motoserver.backends import MotoInternalsChanged, check_moto

    monkeypatch.setattr(internal, replacement)
    with pytest.raises(MotoInternalsChanged, match=named):
        check_moto()


def test_a_missing_moto_backend_is_refused(monkeypatch):
    import moto.s3.models

    from sm_async_nb.local.motoserver.backends import MotoInternalsChanged, check_moto

    monkeypatch.delattr(moto.s3.models, "s3_backends")
    with pytest.raises(MotoInternalsChanged, match="s3_backends"):
        check_moto()


def serve_inputs_outputs_failures_and_sns(stack):
    """Through the stack's runtime: a good S3 input, a missing one, and both SNS notifications."""
    s3, sns, sqs = stack.boto3_client("s3"), stack.boto3_client("sns"), stack.boto3_client("sqs")
    queue = sqs.create_queue(QueueName="adapter-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic in [t["TopicArn"] for t in sns.list_topics()["Topics"]]:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    s3.put_object(Bucket=stack.input_bucket, Key="inputs/adapter.csv", Body=IRIS_CSV.encode())
    runtime = stack.boto3_client("sagemaker-runtime")
    good = runtime.invoke_endpoint_async(EndpointName="local-async", ContentType="text/csv", Accept="text/csv",
                                         InputLocation=f"s3://{stack.input_bucket}/inputs/adapter.csv")
    bad = runtime.invoke_endpoint_async(EndpointName="local-async", ContentType="text/csv",
                                        InputLocation=f"s3://{stack.input_bucket}/inputs/missing.csv")
    assert stack.wait_until_idle(20)
    out = s3.get_object(Bucket=stack.input_bucket, Key=good["OutputLocation"].split("/", 3)[3])
    assert out["ContentType"] == "text/csv" and out["Body"].read().decode().splitlines()[0].startswith("setosa,")
    failure = s3.get_object(Bucket=stack.input_bucket, Key=bad["FailureLocation"].split("/", 3)[3])
    assert "Failed to download the input" in failure["Body"].read().decode()
    deadline, events = time.monotonic() + 20, []
    while len(events) < 2 and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            events.append(json.loads(json.loads(message["Body"])["Message"]))
    assert sorted(e["invocationStatus"] for e in events) == ["Completed", "Failed"]
    listed = s3.list_objects_v2(Bucket=stack.input_bucket, Prefix=".sm-async-nb-probe").get("KeyCount")
    assert listed == 0  # the start-up probe leaves nothing behind


def test_the_session_stack_writes_motos_backends_directly(stack):
    # The session's stack (a child process): its worker reaches moto's backends directly.
    assert stack.stats["moto_access"] == "direct"


def test_the_direct_path_serves_inputs_outputs_failures_and_sns():
    from sm_async_nb.local import LocalStack

    with LocalStack(sns=True, concurrency=1) as stack:
        assert stack.stats["moto_access"] == "direct"
        serve_inputs_outputs_failures_and_sns(stack)


def test_a_changed_moto_falls_back_to_http_with_one_log_line(monkeypatch, caplog):
    """Forced in an engine in this process: moto's put_object 'changed', so the check fails."""
    from moto.s3.models import S3Backend

    from sm_async_nb.local import LocalStack

    real = S3Backend.put_object
    monkeypatch.setattr(S3Backend, "put_object", lambda self, bucket, key, body, **kw: real(self, bucket, key, body,
                                                                                            **kw))
    with caplog.at_level(logging.WARNING, logger="sm_async_nb.local.motoserver.backends"), \
            LocalStack(where="this-process", sns=True, concurrency=1) as stack:
        assert stack.stats["moto_access"] == "http"
        serve_inputs_outputs_failures_and_sns(stack)
    lines = [r.getMessage() for r in caplog.records if r.name == "sm_async_nb.local.motoserver.backends"]
    assert len(lines) == 1 and "over HTTP" in lines[0] and "put_object" in lines[0]


def test_a_write_the_server_does_not_see_as_written_falls_back_to_http(monkeypatch, caplog):
    """The signatures match, but metadata set on a key no longer reaches what the server answers
    (moto moved where it keeps it): the start-up probe catches it."""
    from moto.s3.models import FakeKey

    from sm_async_nb.local import LocalStack

    monkeypatch.setattr(FakeKey, "set_metadata", lambda self, metadata, replace=False: None)
    with caplog.at_level(logging.WARNING, logger="sm_async_nb.local.motoserver.backends"), \
            LocalStack(where="this-process", concurrency=1) as stack:
        assert stack.stats["moto_access"] == "http"
        runtime = stack.boto3_client("sagemaker-runtime")
        answer = runtime.invoke_endpoint_async(EndpointName="local-async", Body=IRIS_CSV.encode(),
                                               ContentType="text/csv", Accept="text/csv")
        assert stack.wait_until_idle(20)
        body = stack.boto3_client("s3").get_object(Bucket=stack.input_bucket,
                                                   Key=answer["OutputLocation"].split("/", 3)[3])["Body"].read()
        assert body.decode().startswith("setosa,")
    assert any("probe" in r.getMessage() for r in caplog.records)
