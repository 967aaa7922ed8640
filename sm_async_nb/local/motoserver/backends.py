"""The one adapter onto moto's internals: the worker reads inputs from, and writes outputs and SNS
messages into, moto's in-process backends directly — no HTTP, no botocore.

Why: reading an input and writing an output through boto3 costs two signed HTTP requests on the
client side of the stack plus two moto requests on the server side, for what is, inside the
stack's own process, a dictionary lookup and an insert.

moto does not promise these internals, so :func:`open_sink` checks what it needs when the stack
starts — the backends and method signatures used here (:func:`check_moto`), then a probe object
written directly must be visible, with its content type, to a plain S3 request to the server —
and when anything differs it falls back to the HTTP path (boto3 to moto's server) with one log
line. The stack works either way; only its CPU per invocation differs. This module is the only
place that touches moto's internals.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from typing import Any

from ...aws.s3uri import S3Uri
from ..service.worker import BotoSink, Sink

log = logging.getLogger(__name__)

DIRECT, HTTP = "direct", "http"  # how the worker reaches moto
PROBE_CONTENT_TYPE = "application/x-sm-async-nb-probe"


class MotoInternalsChanged(RuntimeError):
    """moto's backends no longer look the way :class:`MotoBackends` expects."""


# The methods used here and the leading parameters they are called with.
REQUIRED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "S3Backend.put_object": ("moto.s3.models", "S3Backend.put_object", ("bucket_name", "key_name", "value")),
    "S3Backend.get_object": ("moto.s3.models", "S3Backend.get_object", ("bucket_name", "key_name")),
    "S3Backend.delete_object": ("moto.s3.models", "S3Backend.delete_object", ("bucket_name", "key_name")),
    "FakeKey.set_metadata": ("moto.s3.models", "FakeKey.set_metadata", ("metadata",)),
    "SNSBackend.publish": ("moto.sns.models", "SNSBackend.publish", ("message", "arn")),
}


def check_moto() -> None:
    """Raise :class:`MotoInternalsChanged` unless moto has every backend and method used here,
    taking the parameters used here.

    Raises:
        MotoInternalsChanged: what is missing or changed, naming it.
    """
    import importlib

    for name, (module_name, path, params) in REQUIRED.items():
        try:
            target: Any = importlib.import_module(module_name)
            for part in path.split("."):
                target = getattr(target, part)
            found = tuple(list(inspect.signature(target).parameters)[1:1 + len(params)])
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            raise MotoInternalsChanged(f"moto's {name} is missing ({type(exc).__name__}: {exc})") from None
        if found != params:
            raise MotoInternalsChanged(f"moto's {name} takes {list(found)}, expected {list(params)}")
    for module_name, registry in (("moto.s3.models", "s3_backends"), ("moto.sns.models", "sns_backends")):
        if not hasattr(importlib.import_module(module_name), registry):
            raise MotoInternalsChanged(f"moto has no {module_name}.{registry}")


class MotoBackends:
    """:class:`~sm_async_nb.local.service.worker.Sink` on moto's in-process backends."""

    kind = DIRECT

    def __init__(self, account_id: str, region: str):
        from moto.s3.models import s3_backends
        from moto.sns.models import sns_backends

        self._s3: Any = s3_backends[account_id]["aws"]
        self._sns: Any = sns_backends[account_id][region]

    def read(self, uri: str) -> bytes:
        """The object's bytes.

        Raises:
            LookupError: no such bucket or key (the worker turns it into a failure object).
        """
        location = S3Uri.parse(uri)
        try:
            key = self._s3.get_object(location.bucket, location.key)
        except Exception as exc:  # moto raises MissingBucket for an unknown bucket
            raise LookupError(f"{type(exc).__name__}: {exc}") from None
        if key is None:
            raise LookupError(f"NoSuchKey: The specified key does not exist: {uri}")
        return bytes(key.value)

    def write(self, uri: str, body: bytes, content_type: str) -> None:
        """Store ``body`` as an object carrying ``content_type``, as a PutObject would."""
        location = S3Uri.parse(uri)
        key = self._s3.put_object(location.bucket, location.key, body)
        key.set_metadata({"Content-Type": content_type})

    def publish(self, topic_arn: str, message: str) -> None:
        """Publish to an SNS topic (and so to its SQS subscriptions)."""
        self._sns.publish(message, arn=topic_arn)

    def probe(self, bucket: str, s3: Any) -> None:
        """Write an object directly and read it back through ``s3`` (a boto3 client of the moto
        server in this process); remove it.

        Raises:
            MotoInternalsChanged: the server does not see what was written, or not as written.
        """
        uri = f"s3://{bucket}/.sm-async-nb-probe-{uuid.uuid4().hex}"
        body = b"sm_async_nb probe"
        try:
            self.write(uri, body, PROBE_CONTENT_TYPE)
            location = S3Uri.parse(uri)
            seen = s3.get_object(Bucket=location.bucket, Key=location.key)
            got = (seen["Body"].read(), seen.get("ContentType"), self.read(uri))
        except Exception as exc:
            raise MotoInternalsChanged(f"a probe object written directly failed: {type(exc).__name__}: {exc}") \
                from None
        finally:
            try:
                self._s3.delete_object(S3Uri.parse(uri).bucket, S3Uri.parse(uri).key)
            except Exception:  # best effort: the bucket is the stack's own
                log.debug("could not remove the probe object %s", uri, exc_info=True)
        if got != (body, PROBE_CONTENT_TYPE, body):
            raise MotoInternalsChanged(f"a probe object written directly reads back as {got!r}")


def open_sink(account_id: str, region: str, bucket: str, s3: Any, sns: Any) -> Sink:
    """The direct adapter when moto's internals are what it needs, else the HTTP path (one log line).

    Args:
        account_id, region: the stack's.
        bucket: a bucket of the stack's own, for the probe object.
        s3, sns: boto3 clients of the moto server in this process (the HTTP path uses them).
    """
    import moto

    try:
        check_moto()
        sink = MotoBackends(account_id, region)
        sink.probe(bucket, s3)
        return sink
    except MotoInternalsChanged as exc:
        log.warning("moto %s: the worker reaches moto over HTTP instead of its backends (%s)",
                    getattr(moto, "__version__", "?"), exc)
        return BotoSink(s3, sns)


def sink_kind(sink: Sink) -> str:
    """``direct`` or ``http``."""
    return DIRECT if isinstance(sink, MotoBackends) else HTTP
