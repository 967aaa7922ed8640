"""Where inputs go: the configured ``s3_input_path``, else SageMaker's default bucket.

The input object is named by the inference id, so a retry overwrites it and never duplicates it.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote

from ..aws.clients import NO_BUCKET_CODES, NOT_FOUND_CODES, error_code, explain
from ..aws.s3uri import S3Uri
from ..context import Context
from ..errors import ConfigurationError, SubmissionError, ValidationError
from ..records import InvocationRecord

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "sm-async-nb/inputs/"


def input_uri(prefix: S3Uri, inference_id: str, suffix: str) -> S3Uri:
    """The input object is named by the inference id: a retry overwrites, never duplicates."""
    return prefix.join(quote(inference_id, safe="-_.~") + suffix)


class InputPrefix:
    """Resolves (once, thread-safely) where this client's payloads are uploaded."""

    def __init__(self, ctx: Context, configured: S3Uri | None):
        self.ctx = ctx
        self._prefix = configured
        self._lock = threading.Lock()

    def get(self) -> S3Uri:
        """The configured s3_input_path, else SageMaker's default bucket (created if missing)."""
        with self._lock:
            if self._prefix is None:
                self._prefix = self._default_prefix()
            return self._prefix

    def _default_prefix(self) -> S3Uri:
        aws = self.ctx.aws
        region = aws.region
        try:
            account = aws.get("sts").get_caller_identity()["Account"]
            bucket = f"sagemaker-{region}-{account}"
            s3 = aws.s3
            try:
                s3.head_bucket(Bucket=bucket)
            except Exception as exc:
                if error_code(exc) not in NOT_FOUND_CODES | NO_BUCKET_CODES:
                    raise
                log.info("creating SageMaker's default bucket %s", bucket)
                if region == "us-east-1":
                    s3.create_bucket(Bucket=bucket)
                else:
                    s3.create_bucket(Bucket=bucket,
                                     CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
        except ConfigurationError:
            raise
        except Exception as exc:
            raise SubmissionError(f"Could not prepare the default input bucket: {explain(exc).message} "
                                  "Or set %config SageMakerAsync.s3_input_path.") from None
        return S3Uri(bucket, DEFAULT_PREFIX)


def check_input_exists(ctx: Context, record: InvocationRecord) -> None:
    """Before resubmitting: the input object must still be where the journal says."""
    assert record.input_location is not None
    location = S3Uri.parse(record.input_location)
    try:
        ctx.aws.s3.head_object(Bucket=location.bucket, Key=location.key)
    except Exception as exc:
        problem = explain(exc, bucket=location.bucket)
        if problem.kind == "not_found":
            raise ValidationError(f"The input of {record.inference_id} is no longer at {location}: "
                                  "submit the payload again.") from None
        raise SubmissionError(problem.message, inference_id=record.inference_id, code=problem.code) from None
