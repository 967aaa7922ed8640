"""boto3 clients with one retry policy and request counting; AWS errors classified and explained.

The same code serves real AWS and the local stack: only ``endpoint_urls`` differ. Every AWS error
code list the package uses is defined here, once; whether an error is transient is decided by
botocore's own standard-mode retry checkers (``botocore.retries.standard``), so a code botocore
retries (RequestTimeout, SlowDown, throttling...) is never treated as a permanent failure.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
import botocore.exceptions as bx
from botocore.config import Config
from botocore.retries import standard

from ..distribution import version
from ..errors import AwsError, SmAsyncError
from .clock import ServerClock

if TYPE_CHECKING:
    from types_boto3_application_autoscaling import ApplicationAutoScalingClient
    from types_boto3_cloudwatch import CloudWatchClient
    from types_boto3_logs import CloudWatchLogsClient
    from types_boto3_s3 import S3Client
    from types_boto3_sagemaker import SageMakerClient
    from types_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from types_boto3_sns import SNSClient
    from types_boto3_sqs import SQSClient
    from types_boto3_sts import STSClient


RETRY_POLICY = {"mode": "standard", "max_attempts": 5}

# --- error codes, defined once ---------------------------------------------------------------
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
NO_BUCKET_CODES = frozenset({"NoSuchBucket"})
RESOURCE_NOT_FOUND_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException"})  # e.g. DescribeInferenceRouter
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "403", "Forbidden",
                                 "UnauthorizedOperation", "KMSAccessDeniedException"})
EXPIRED_CREDENTIAL_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
INVALID_CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch",
                                      "UnrecognizedClientException", "InvalidClientTokenId"})
CREDENTIAL_CODES = EXPIRED_CREDENTIAL_CODES | INVALID_CREDENTIAL_CODES
VALIDATION_CODES = frozenset({"ValidationError", "ValidationException"})
# A conditional write (IfNoneMatch / IfMatch) found something else at the key, or met a concurrent one.
CONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
QUEUE_GONE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
# Raised by botocore before any request when credentials cannot be loaded at all.
CREDENTIAL_EXCEPTIONS: tuple[type[Exception], ...] = (
    bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError, bx.TokenRetrievalError,
    bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError)
CONNECTION_EXCEPTIONS: tuple[type[Exception], ...] = (
    bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError, bx.ConnectionClosedError)

# botocore's own checkers; a 429 without a known code is throttling only in newer botocore releases.
_STATUS_429: Any = getattr(standard, "ThrottlingStatusCodeChecker", None)
_RETRYABLE = standard.OrRetryChecker([
    standard.TransientRetryableChecker(), standard.ThrottledRetryableChecker(),
    *([_STATUS_429()] if _STATUS_429 is not None else []),
])


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError (``"NoSuchKey"``, ``"404"``...), else None."""
    if isinstance(exc, bx.ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


def http_status(exc: BaseException) -> int | None:
    if isinstance(exc, bx.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


# The IAM action each API call this package makes needs (what an AccessDenied answer means).
IAM_ACTIONS = {
    **dict.fromkeys(("GetObject", "HeadObject"), "s3:GetObject"),
    **dict.fromkeys(("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"), "s3:PutObject"),
    **dict.fromkeys(("ListObjectsV2", "ListObjects", "HeadBucket"), "s3:ListBucket"),
    **dict.fromkeys(("DeleteObject", "DeleteObjects"), "s3:DeleteObject"),
    "CopyObject": "s3:GetObject and s3:PutObject", "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "CreateBucket": "s3:CreateBucket", "InvokeEndpointAsync": "sagemaker:InvokeEndpointAsync",
    "InvokeInferenceRouterAsync": "sagemaker:InvokeInferenceRouterAsync",
    "DescribeInferenceRouter": "sagemaker:DescribeInferenceRouter",
    "DescribeEndpoint": "sagemaker:DescribeEndpoint", "DescribeEndpointConfig": "sagemaker:DescribeEndpointConfig",
    "GetCallerIdentity": "sts:GetCallerIdentity", "FilterLogEvents": "logs:FilterLogEvents",
    "GetMetricData": "cloudwatch:GetMetricData",
}


def iam_action(operation: str | None) -> str:
    """The IAM action an API call needs (``s3:ListBucket`` for ListObjectsV2...)."""
    if not operation:
        return "the permission for this call"
    return IAM_ACTIONS.get(operation, f"the permission for {operation}")


def is_missing_endpoint(exc: BaseException) -> bool:
    """SageMaker answers an unknown endpoint with a ValidationException ("Could not find endpoint ...",
    "Endpoint ... not found")."""
    if error_code(exc) not in VALIDATION_CODES:
        return False
    text = str(exc).lower()
    return "endpoint" in text and ("could not find" in text or "not found" in text or "does not exist" in text)


def is_transient(exc: BaseException) -> bool:
    """Whether botocore's standard retry mode would retry this error (it outlasted the retries
    when we see it): transient codes and 5xx, throttling codes and 429, connection errors."""
    status = http_status(exc)
    context = standard.RetryContext(
        attempt_number=1,
        parsed_response=exc.response if isinstance(exc, bx.ClientError) else None,
        http_response=SimpleNamespace(status_code=status) if status is not None else None,
        caught_exception=exc if isinstance(exc, Exception) and not isinstance(exc, bx.ClientError) else None)
    return bool(_RETRYABLE.is_retryable(context))


class RequestCounter:
    """Counts HTTP requests per service and operation, retries included (botocore events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, event_name: str, **kwargs: object) -> None:
        # event_name looks like "before-send.s3.ListObjectsV2"
        _, service, operation_name = event_name.split(".", 2)
        with self._lock:
            self.counts[f"{service}.{operation_name}"] += 1
            self.counts[service] += 1

    def total(self, service: str) -> int:
        with self._lock:
            return self.counts[service]


ServiceName = Literal["s3", "sagemaker", "sagemaker-runtime", "sagemaker-inference-router-runtime", "sns", "sqs",
                      "sts", "cloudwatch", "logs", "application-autoscaling"]


class AwsClients:
    """Lazily created boto3 clients sharing one session, retry policy and request counter."""

    def __init__(self, session: boto3.Session, endpoint_urls: Mapping[str, str] | None = None,
                 max_pool_connections: int = 16, clock: Callable[[], float] = time.time):
        self.session = session
        self.endpoint_urls = dict(endpoint_urls or {})
        self.counter = RequestCounter()
        # S3's clock against the notebook's, from the Date of every S3 answer (aws/clock.py).
        self.s3_clock = ServerClock(clock)
        self._config = Config(retries=RETRY_POLICY, max_pool_connections=max(10, max_pool_connections),  # type: ignore[arg-type]
                              user_agent_extra=f"sm-async-nb/{version()}")
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str | None:
        return self.session.region_name

    @overload
    def get(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def get(self, service: Literal["sagemaker"]) -> SageMakerClient: ...
    @overload
    def get(self, service: Literal["sagemaker-runtime"]) -> SageMakerRuntimeClient: ...
    @overload
    def get(self, service: Literal["sns"]) -> SNSClient: ...
    @overload
    def get(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def get(self, service: Literal["sts"]) -> STSClient: ...
    @overload
    def get(self, service: Literal["cloudwatch"]) -> CloudWatchClient: ...
    @overload
    def get(self, service: Literal["logs"]) -> CloudWatchLogsClient: ...
    @overload
    def get(self, service: Literal["application-autoscaling"]) -> ApplicationAutoScalingClient: ...
    @overload
    def get(self, service: Literal["sagemaker-inference-router-runtime"]) -> Any: ...  # no stubs for it yet

    def get(self, service: ServiceName) -> Any:
        """The shared client of ``service`` (made on first use, thread-safe)."""
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._make(service, self.counter)
                self._clients[service] = client
            return client

    def new_s3(self) -> CountedS3:
        """An S3 client of its own with its own request counter (the tracker's)."""
        counter = RequestCounter()
        return CountedS3(self._make("s3", counter), counter)

    def _make(self, service: ServiceName, counter: RequestCounter) -> Any:
        session: Any = self.session  # boto3's stubs do not list the newest services (inference routers)
        client: Any = session.client(service, endpoint_url=self.endpoint_urls.get(service), config=self._config)
        client.meta.events.register("before-send", counter)
        if service == "s3":
            client.meta.events.register("after-call.s3", self.s3_clock.observe)
        return client

    @property
    def s3(self) -> S3Client:
        return self.get("s3")

    @property
    def sagemaker(self) -> Any:
        """The SageMaker control plane's client, untyped: the installed stubs may predate its inference-router
        operations (DescribeInferenceRouter)."""
        return self.get("sagemaker")

    @property
    def runtime(self) -> SageMakerRuntimeClient:
        return self.get("sagemaker-runtime")

    @property
    def router_runtime(self) -> Any:
        """InvokeInferenceRouterAsync's client (botocore 1.44 or later; the caller checked the model has it). Its
        endpoint comes from ``endpoint_urls`` or, as boto3 does, AWS_ENDPOINT_URL_SAGEMAKER_INFERENCE_ROUTER_RUNTIME."""
        return self.get("sagemaker-inference-router-runtime")

    def origin(self) -> str:
        """Identifies the AWS target (region + endpoints) a journal row belongs to, so a client
        never polls rows written against another region or an earlier local stack."""
        return "|".join([self.region or "", self.s3.meta.endpoint_url, self.runtime.meta.endpoint_url])

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


@dataclass(frozen=True)
class CountedS3:
    client: S3Client
    counter: RequestCounter


ProblemKind = Literal["credentials", "region", "connection", "not_found", "no_bucket", "access_denied",
                      "validation", "transient", "permanent"]
# Kinds every other request of a batch (or part of a download) would meet the same way: stop sending them.
STOPS_BATCH_KINDS: frozenset[str] = frozenset({"credentials", "region", "connection", "no_bucket", "access_denied",
                                               "validation"})


@dataclass(frozen=True)
class Problem:
    """A failed AWS call, said the way a user can act on.

    ``kind`` classifies it once for every caller: ``transient`` ones are what botocore would retry
    (they never stop a batch or delete an uploaded input), ``credentials``/``connection`` ones
    would fail the same way for every other request of a batch."""

    code: str
    message: str
    kind: ProblemKind

    @property
    def permanent(self) -> bool:
        return self.kind not in ("transient", "connection")

    @property
    def stops_batch(self) -> bool:
        """Every other request of the batch would fail the same way: stop sending them."""
        return self.kind in STOPS_BATCH_KINDS


def explain(exc: BaseException, *, bucket: str | None = None, endpoint_name: str | None = None) -> Problem:
    """Turn a botocore/boto3 exception into one actionable line and a classification."""
    if isinstance(exc, bx.NoCredentialsError):
        return Problem("NoCredentials", "No AWS credentials found: configure a profile (aws configure / "
                       "aws sso login), set AWS_PROFILE, or try the local stack with %sm_async local start.",
                       "credentials")
    if isinstance(exc, CREDENTIAL_EXCEPTIONS):
        return Problem("CredentialsError", f"AWS credentials could not be loaded ({type(exc).__name__}): "
                       "refresh them (e.g. aws sso login) and try again.", "credentials")
    if isinstance(exc, bx.NoRegionError):
        return Problem("NoRegion", "No AWS region configured: set AWS_DEFAULT_REGION or "
                       "%config SageMakerAsync.region.", "region")
    if isinstance(exc, CONNECTION_EXCEPTIONS):
        return Problem("ConnectionError", f"Could not reach AWS ({exc}); check the network or, for the "
                       "local stack, that it is still running.", "connection")
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "ClientError")
        text = str(error.get("Message") or exc)
        if code in NO_BUCKET_CODES:
            return Problem(code, f"Bucket {bucket!r} does not exist: create it or set "
                           "%config SageMakerAsync.s3_input_path to a bucket you own.", "no_bucket")
        if code in ACCESS_DENIED_CODES:
            operation = str(getattr(exc, "operation_name", "") or "")
            action = iam_action(operation)
            s3 = action.startswith("s3:")
            where = f" on bucket {bucket!r}" if bucket and s3 else ""
            need = f" ({operation} needs {action})" if operation else ""
            return Problem(code, f"Access denied{where}{need}: {text.rstrip('.')}. Ask for {action}"
                           + (", or use a bucket where you have it." if s3 else "."), "access_denied")
        if code in EXPIRED_CREDENTIAL_CODES:
            return Problem(code, "Your AWS credentials have expired: refresh them (aws sso login, or a new "
                           "session) and resubmit.", "credentials")
        if code in INVALID_CREDENTIAL_CODES:
            return Problem(code, f"AWS rejected the credentials ({code}): check your profile or keys.",
                           "credentials")
        if code in NOT_FOUND_CODES:
            return Problem(code, f"{code}: {text}", "not_found")
        if is_missing_endpoint(exc):
            name = f" {endpoint_name!r}" if endpoint_name else ""
            return Problem(code, f"Endpoint{name} not found: {text} Check the name and region "
                           "(aws sagemaker list-endpoints).", "validation")
        if is_transient(exc):
            return Problem(code, f"{code}: {text} (still failing after botocore's retries; it is "
                           "transient: resubmit() sends it again)", "transient")
        return Problem(code, f"{code}: {text}", "validation" if code in VALIDATION_CODES else "permanent")
    if is_transient(exc):
        return Problem(type(exc).__name__, f"{type(exc).__name__}: {exc}", "transient")
    return Problem(type(exc).__name__, f"{type(exc).__name__}: {exc}", "permanent")


def as_error(exc: BaseException, *, bucket: str | None = None, endpoint_name: str | None = None,
             doing: str = "") -> BaseException:
    """An sm_async_nb exception for a failed AWS call (our own errors pass through unchanged)."""
    if isinstance(exc, SmAsyncError):
        return exc
    problem = explain(exc, bucket=bucket, endpoint_name=endpoint_name)
    prefix = f"{doing}: " if doing else ""
    return AwsError(prefix + problem.message, code=problem.code, kind=problem.kind)
