"""The SNS message SageMaker publishes when an asynchronous inference ends (SPEC §2): built by the
emulated service (``local/``), read by event mode (``tracking/sqs_events``). One definition of the
format for both sides."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

EVENT_NAME = "InferenceResult"
FAILURE_CONTENT_TYPE = "text/plain; charset=utf-8"  # of failure objects
MAX_EMBEDDED_RESPONSE = 128 * 1024  # IncludeInferenceResponseIn: AWS embeds responses up to 128 KB
SUCCESS_TOPIC_INCLUDE = "SUCCESS_NOTIFICATION_TOPIC"  # the IncludeInferenceResponseIn value


def iso(epoch: float) -> str:
    """An epoch as the notification's timestamps write it (``2026-12-05T02:29:14.123Z``)."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class InferenceResult:
    """What one notification says, on either side of the wire."""

    inference_id: str
    succeeded: bool
    output_location: str | None = None
    failure_location: str | None = None
    failure_reason: str | None = None
    event_time: str | None = None          # ISO 8601, as sent
    received_time: str | None = None
    content_type: str | None = None        # the response's (or the failure object's) content type
    body: bytes | None = None              # the response itself, when IncludeInferenceResponseIn asks for it
    endpoint_name: str | None = None
    region: str | None = None
    request: dict[str, Any] | None = None  # contentType, endpointName, inputLocation, accept, customAttributes

    def to_message(self) -> dict[str, Any]:
        """The notification's JSON object."""
        message: dict[str, Any] = {
            "awsRegion": self.region, "eventTime": self.event_time, "receivedTime": self.received_time,
            "invocationStatus": "Completed" if self.succeeded else "Failed",
            "requestParameters": {k: v for k, v in (self.request or {}).items() if v is not None},
        }
        if self.succeeded:
            message["responseParameters"] = {"contentType": self.content_type, "outputLocation": self.output_location}
        else:
            message["failureReason"] = self.failure_reason
            message["responseParameters"] = {"contentType": FAILURE_CONTENT_TYPE,
                                             "failureLocation": self.failure_location}
        if self.body is not None:
            message["responseBody"] = {"content": base64.b64encode(self.body).decode("ascii"), "encoding": "BASE64"}
        message.update(inferenceId=self.inference_id, eventVersion="1.0", eventSource="aws:sagemaker",
                       eventName=EVENT_NAME)
        return message


def _response_body(message: dict[str, Any]) -> bytes | None:
    """The inference response embedded by IncludeInferenceResponseIn: ``responseBody`` holding the
    content (base64 when ``encoding`` says so, else text), at the top level or in responseParameters."""
    found = message.get("responseBody", (message.get("responseParameters") or {}).get("responseBody"))
    if found is None:
        return None
    if isinstance(found, str):
        return found.encode("utf-8")
    content = found.get("content")
    if not isinstance(content, str):
        return None
    if str(found.get("encoding", "")).upper() in ("BASE64", "BASE_64"):
        return base64.b64decode(content, validate=True)
    return content.encode("utf-8")


def parse(body: str) -> InferenceResult | None:
    """An SQS message body (the SNS envelope, or a raw-delivered message); None when it is not an
    inference result (or is malformed)."""
    try:
        message = json.loads(body)
        if "Message" in message and "Type" in message:  # SNS envelope
            message = json.loads(message["Message"])
        if message.get("eventName") != EVENT_NAME:
            return None
        succeeded = message.get("invocationStatus") == "Completed"
        response = message.get("responseParameters") or {}
        embedded = _response_body(message) if succeeded else None
        if embedded is not None and len(embedded) > MAX_EMBEDDED_RESPONSE:
            embedded = None  # not what AWS sends; read it from S3 instead
        return InferenceResult(
            inference_id=message["inferenceId"], succeeded=succeeded, output_location=response.get("outputLocation"),
            failure_location=response.get("failureLocation"), failure_reason=message.get("failureReason"),
            event_time=message.get("eventTime"), received_time=message.get("receivedTime"),
            content_type=response.get("contentType"), body=embedded,
            endpoint_name=(message.get("requestParameters") or {}).get("endpointName"),
            region=message.get("awsRegion"), request=message.get("requestParameters"))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return None
