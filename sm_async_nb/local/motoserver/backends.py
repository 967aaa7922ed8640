"""The worker's sink when moto runs in the same process: moto's backends, no HTTP, no botocore.

Why: reading an input and writing an output through boto3 costs two signed HTTP requests on the
client side of the stack plus two moto requests on the server side, for what is, inside the
stack's own process, a dictionary lookup and an insert. This module is the only place that
touches moto's internals; :data:`MOTO_VERSION` is the version they were read from (pinned in
pyproject.toml) and ``tests/stack/test_local_direct.py`` fails loudly when they move.
"""

from __future__ import annotations

from typing import Any

from ...aws.s3uri import S3Uri

MOTO_VERSION = "5.2.5"


class MotoInternalsChanged(RuntimeError):
    """moto's backends no longer look the way :class:`MotoSink` expects."""


def check_moto() -> None:
    """Raise :class:`MotoInternalsChanged` unless the moto in use is the one this module was written for.

    Raises:
        MotoInternalsChanged: another moto version, or one of the backend methods used here is gone.
    """
    import inspect

    import moto
    from moto.s3.models import S3Backend
    from moto.sns.models import SNSBackend

    if moto.__version__ != MOTO_VERSION:
        raise MotoInternalsChanged(f"the lean local stack was written against moto {MOTO_VERSION}, found "
                                   f"{moto.__version__}: pip install 'moto[server]=={MOTO_VERSION}'")
    expected: dict[str, tuple[Any, tuple[str, ...]]] = {
        "S3Backend.put_object": (S3Backend.put_object, ("bucket_name", "key_name", "value")),
        "S3Backend.get_object": (S3Backend.get_object, ("bucket_name", "key_name")),
        "SNSBackend.publish": (SNSBackend.publish, ("message", "arn"))}
    for name, (method, names) in expected.items():
        params = list(inspect.signature(method).parameters)[1:1 + len(names)]
        if tuple(params) != names:
            raise MotoInternalsChanged(f"moto's {name} takes {params}, expected {list(names)}; "
                                       "sm_async_nb/local/motoserver/backends.py needs updating")


class MotoSink:
    """Reads inputs from, and writes outputs and SNS messages into, moto's in-process backends."""

    def __init__(self, account_id: str, region: str):
        from moto.s3.models import s3_backends
        from moto.sns.models import sns_backends

        check_moto()
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
