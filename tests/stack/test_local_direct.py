"""The lean emulator's direct access to moto's backends (no HTTP): guarded against moto moving."""

from __future__ import annotations

import json
import time

import pytest
from stackhelp import IRIS_CSV


def test_moto_is_the_version_the_direct_sink_was_written_for():
    """Fails loudly when moto is upgraded: re-read moto's S3/SNS backends, then bump MOTO_VERSION."""
    import moto

    from sm_async_nb.local.motoserver.backends import MOTO_VERSION, check_moto

    check_moto()
    assert moto.__version__ == MOTO_VERSION


def test_a_changed_moto_signature_is_refused(monkeypatch):
    from moto.s3.models import S3Backend

    from sm_async_nb.local.motoserver.backends import MotoInternalsChanged, check_moto

    monkeypatch.setattr(S3Backend, "put_object", lambda self, bucket, key, body: None)
    with pytest.raises(MotoInternalsChanged, match="put_object"):
        check_moto()


@pytest.fixture(scope="module")
def lean():
    from sm_async_nb.local import LocalStack

    with LocalStack(moto_in_process=True, sns=True) as running:
        yield running


def test_lean_stack_serves_s3_inputs_outputs_failures_and_sns(lean):
    from sm_async_nb.local.motoserver.backends import MotoSink

    assert isinstance(lean._worker.sink, MotoSink)
    s3, sns, sqs = lean.boto3_client("s3"), lean.boto3_client("sns"), lean.boto3_client("sqs")
    queue = sqs.create_queue(QueueName="lean-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    for topic in topics:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    s3.put_object(Bucket=lean.input_bucket, Key="inputs/lean.csv", Body=IRIS_CSV.encode())
    runtime = lean.boto3_client("sagemaker-runtime")
    good = runtime.invoke_endpoint_async(EndpointName="local-async", ContentType="text/csv", Accept="text/csv",
                                         InputLocation=f"s3://{lean.input_bucket}/inputs/lean.csv")
    bad = runtime.invoke_endpoint_async(EndpointName="local-async", ContentType="text/csv",
                                        InputLocation=f"s3://{lean.input_bucket}/inputs/missing.csv")
    assert lean.wait_until_idle(20)
    out = s3.get_object(Bucket=lean.input_bucket, Key=good["OutputLocation"].split("/", 3)[3])
    assert out["ContentType"] == "text/csv" and out["Body"].read().decode().splitlines()[0].startswith("setosa,")
    failure = s3.get_object(Bucket=lean.input_bucket, Key=bad["FailureLocation"].split("/", 3)[3])
    assert "Failed to download the input" in failure["Body"].read().decode()
    deadline, events = time.monotonic() + 20, []
    while len(events) < 2 and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            events.append(json.loads(json.loads(message["Body"])["Message"]))
    assert sorted(e["invocationStatus"] for e in events) == ["Completed", "Failed"]
