"""Event mode: learn completions from the endpoint's SNS success/error notifications via SQS.

Opt-in, because it creates resources in the user's account: one SQS queue with a policy that
lets the two topics write to it, and one subscription per topic. What was created is written to
a small JSON file so it can be removed later, even from another kernel.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from ..aws.clients import NOT_FOUND_CODES, QUEUE_GONE_CODES, AwsClients, error_code
from ..config import default_home, write_private
from ..contract import notifications
from ..errors import ValidationError
from ..records import Finish, PendingRow, Status, failure_status

log = logging.getLogger(__name__)

RECEIVE_ROUNDS = 20  # at most 200 messages per refresh; the rest wait for the next one


@dataclass
class EventResources:
    """What enable() created, so remove() can delete exactly that."""

    endpoint_name: str
    region: str
    queue_url: str
    queue_arn: str
    topics: list[str]
    subscriptions: list[str]


@dataclass(frozen=True)
class Notification:
    inference_id: str
    status: Status
    output_location: str | None
    failure_reason: str | None
    event_time: str | None
    body: bytes | None = None          # the response itself, when the endpoint includes it (≤ 128 KB)
    content_type: str | None = None    # the response's content type


def parse_notification(body: str) -> Notification | None:
    """An SQS message body (the SNS envelope, or a raw-delivered message) → Notification."""
    result = notifications.parse(body)
    if result is None:
        return None
    status = Status.COMPLETED if result.succeeded else failure_status(result.failure_reason)
    return Notification(result.inference_id, status, result.output_location, result.failure_reason,
                        result.event_time, result.body, result.content_type if result.succeeded else None)


def _state_file(aws: AwsClients, endpoint_name: str) -> Path:
    """Keyed by the AWS target (region and endpoints), so a queue made on one local stack, or on
    real AWS, is never reused against another."""
    target = hashlib.sha256(aws.origin().encode()).hexdigest()[:12]
    return default_home() / "events" / f"{target}-{endpoint_name}.json"


def endpoint_topics(aws: AwsClients, endpoint_name: str) -> list[str]:
    """The SuccessTopic / ErrorTopic of the endpoint's AsyncInferenceConfig."""
    sagemaker = aws.get("sagemaker")
    config_name = sagemaker.describe_endpoint(EndpointName=endpoint_name)["EndpointConfigName"]
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    notify = (config.get("AsyncInferenceConfig") or {}).get("OutputConfig", {}).get("NotificationConfig") or {}
    topics = [t for t in (notify.get("SuccessTopic"), notify.get("ErrorTopic")) if t]
    if not topics:
        raise ValidationError(f"Endpoint {endpoint_name!r} has no SNS success/error topics in its "
                              "AsyncInferenceConfig, so there are no notifications to listen to; "
                              "status polling through S3 keeps working.")
    return list(dict.fromkeys(topics))


def _queue_exists(aws: AwsClients, queue_url: str) -> bool:
    try:
        aws.get("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    except Exception as exc:
        if error_code(exc) in QUEUE_GONE_CODES:
            return False
        raise
    return True


def enable(aws: AwsClients, endpoint_name: str) -> EventResources:
    """Create (or reuse, if its queue still exists) the queue and subscriptions for ``endpoint_name``."""
    existing = load(aws, endpoint_name)
    if existing is not None:
        if _queue_exists(aws, existing.queue_url):
            return existing
        log.info("the event queue %s is gone; making a new one", existing.queue_url)
        _state_file(aws, endpoint_name).unlink(missing_ok=True)
    topics = endpoint_topics(aws, endpoint_name)
    sqs, sns = aws.get("sqs"), aws.get("sns")
    region = aws.region or ""
    digest = hashlib.sha256(f"{aws.origin()}/{endpoint_name}".encode()).hexdigest()[:8]
    queue_url = sqs.create_queue(QueueName=f"sm-async-nb-{endpoint_name[:50]}-{digest}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topics}}}]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    subscriptions = [sns.subscribe(TopicArn=t, Protocol="sqs", Endpoint=queue_arn,
                                   ReturnSubscriptionArn=True)["SubscriptionArn"] for t in topics]
    resources = EventResources(endpoint_name, region, queue_url, queue_arn, topics, subscriptions)
    write_private(_state_file(aws, endpoint_name), json.dumps(asdict(resources), indent=1))
    return resources


def load(aws: AwsClients, endpoint_name: str) -> EventResources | None:
    path = _state_file(aws, endpoint_name)
    try:
        return EventResources(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        log.warning("ignoring the unreadable event-mode state file %s", path)
        return None


def remove(aws: AwsClients, endpoint_name: str) -> EventResources | None:
    """Delete the subscriptions and the queue that enable() created (already gone is fine)."""
    resources = load(aws, endpoint_name)
    if resources is None:
        return None
    sns, sqs = aws.get("sns"), aws.get("sqs")
    for arn in resources.subscriptions:
        try:
            sns.unsubscribe(SubscriptionArn=arn)
        except Exception as exc:
            if error_code(exc) not in NOT_FOUND_CODES | {"NotFound", "InvalidParameter"}:
                raise
    try:
        sqs.delete_queue(QueueUrl=resources.queue_url)
    except Exception as exc:
        if error_code(exc) not in QUEUE_GONE_CODES:
            raise
    _state_file(aws, endpoint_name).unlink(missing_ok=True)
    return resources


def _epoch(iso: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class QueueGone(Exception):
    """The event-mode queue was deleted (or belonged to a local stack that stopped)."""


class QueueEventSource:
    """Reads notifications for the tracker; ids it has not heard about are still polled in S3."""

    def __init__(self, aws: AwsClients, resources: EventResources):
        self.sqs = aws.get("sqs")
        self.resources = resources
        self.received = 0

    def poll(self, pending: list[PendingRow]) -> dict[str, Finish]:
        """Drain what is waiting (without blocking) → {inference_id: how it finished}."""
        wanted = {r.inference_id for r in pending}
        found: dict[str, Finish] = {}
        for _ in range(RECEIVE_ROUNDS):
            try:
                answer = self.sqs.receive_message(QueueUrl=self.resources.queue_url, MaxNumberOfMessages=10,
                                                  WaitTimeSeconds=0)
            except Exception as exc:
                if error_code(exc) in QUEUE_GONE_CODES:
                    raise QueueGone(self.resources.queue_url) from exc
                raise
            messages = answer.get("Messages", [])
            if not messages:
                break
            self.received += len(messages)
            for message in messages:
                note = parse_notification(message["Body"])
                if note is None or note.inference_id not in wanted:
                    continue
                body = note.body  # the output itself, when the notification carries it: result() needs no S3 GET
                found[note.inference_id] = Finish(
                    note.inference_id, note.status, _epoch(note.event_time) if note.event_time else None,
                    output_size=len(body) if body is not None else None, failure_reason=note.failure_reason or None,
                    output_body=body, output_content_type=note.content_type if body is not None else None)
            self.sqs.delete_message_batch(QueueUrl=self.resources.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        return found
