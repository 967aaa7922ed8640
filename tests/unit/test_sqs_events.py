"""The SNS notification parser of event mode, on messages shaped like SageMaker's (SPEC §2)."""

from __future__ import annotations

import json

import pytest

from sm_async_nb.records import Status
from sm_async_nb.tracking.sqs_events import parse_notification

SUCCESS = {
    "awsRegion": "us-east-1", "eventTime": "2026-12-02T08:00:01.250Z", "receivedTime": "2026-12-02T08:00:00.000Z",
    "invocationStatus": "Completed",
    "requestParameters": {"contentType": "text/csv", "endpointName": "ep", "inputLocation": "s3://b/in.csv"},
    "responseParameters": {"contentType": "text/csv", "outputLocation": "s3://b/out/abc.out"},
    "inferenceId": "abc", "eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "InferenceResult",
}
FAILURE = {**SUCCESS, "invocationStatus": "Failed", "inferenceId": "def",
           "failureReason": 'ModelError: Received server error (500) from model with message "boom".',
           "responseParameters": {"contentType": "text/plain", "failureLocation": "s3://b/fail/def-error.out"}}


def envelope(message: dict) -> str:
    """How SNS delivers to SQS without raw message delivery."""
    return json.dumps({"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                       "Message": json.dumps(message), "Timestamp": "2026-12-02T08:00:01.300Z"})


def test_a_success_in_an_sns_envelope():
    note = parse_notification(envelope(SUCCESS))
    assert (note.inference_id, note.status, note.output_location) == ("abc", Status.COMPLETED, "s3://b/out/abc.out")
    assert note.failure_reason is None and note.event_time == "2026-12-02T08:00:01.250Z"


def test_a_raw_delivered_failure():
    note = parse_notification(json.dumps(FAILURE))
    assert note.status is Status.FAILED and note.failure_reason.startswith("ModelError")


def test_only_the_service_expiry_code_means_expired():
    expired = {**FAILURE, "failureReason": "RequestExpired: the request was queued longer than its TTL"}
    assert parse_notification(envelope(expired)).status is Status.EXPIRED
    mentions = {**FAILURE, "failureReason": 'ModelError: model said "session expired"'}
    assert parse_notification(envelope(mentions)).status is Status.FAILED


@pytest.mark.parametrize("body", [
    "", "not json", "[]", "null", json.dumps({"Type": "Notification", "Message": "not json"}),
    json.dumps({**SUCCESS, "eventName": "SomethingElse"}),  # another event on the same topic
    json.dumps({k: v for k, v in SUCCESS.items() if k != "inferenceId"}),
    envelope({"eventName": "InferenceResult"}),
])
def test_other_messages_are_ignored_not_raised(body):
    assert parse_notification(body) is None


def test_an_embedded_response_is_read_from_the_notification():
    import base64

    with_body = {**SUCCESS, "responseBody": {"content": base64.b64encode(b"setosa,0.97\n").decode(),
                                             "encoding": "BASE64"}}
    note = parse_notification(envelope(with_body))
    assert note.body == b"setosa,0.97\n" and note.content_type == "text/csv"
    text = parse_notification(json.dumps({**SUCCESS, "responseBody": {"content": "[1, 2]", "encoding": "UTF-8"}}))
    assert text.body == b"[1, 2]"
    assert parse_notification(envelope(SUCCESS)).body is None  # not included: read it from S3
    too_big = {**SUCCESS, "responseBody": {"content": "x" * (128 * 1024 + 1)}}
    assert parse_notification(envelope(too_big)).body is None
    broken = {**SUCCESS, "responseBody": {"content": "not base64!", "encoding": "BASE64"}}
    assert parse_notification(envelope(broken)) is None
