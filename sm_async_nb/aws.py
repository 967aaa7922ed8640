"""boto3 clients with one retry policy, request counting, and errors turned into next steps.

The same code serves real AWS and the local stack: only ``endpoint_urls`` differ.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import boto3
import botocore.exceptions as bx
from botocore.config import Config

USER_AGENT = "sm-async-nb/0.1"

# Error codes that will fail the same way however often they are retried.
_PERMANENT_CODES = {
    "ValidationError", "ValidationException", "AccessDenied", "AccessDeniedException",
    "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "ExpiredTokenException", "UnrecognizedClientException", "InvalidBucketName",
    "KMS.NotFoundException", "KMSAccessDeniedException", "InvalidArgument",
}


class RequestCounter:
    """Counts HTTP requests per service and operation, retries included (botocore events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: object) -> None:
        # event_name looks like "before-send.s3.ListObjectsV2"
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            self.counts[f"{service}.{operation}"] += 1
            self.counts[service] += 1

    def total(self, service: str) -> int:
        with self._lock:
            return self.counts[service]


class AwsClients:
    """Lazily created boto3 clients sharing one session, retry policy and request counter."""

    def __init__(self, session: boto3.Session, endpoint_urls: Mapping[str, str] | None = None,
                 max_pool_connections: int = 16):
        self.session = session
        self.endpoint_urls = dict(endpoint_urls or {})
        self.counter = RequestCounter()
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=max(10, max_pool_connections),
            user_agent_extra=USER_AGENT,
        )
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str | None:
        return self.session.region_name

    def get(self, service: str):
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._make(service, self.counter)
                self._clients[service] = client
            return client

    def new_client(self, service: str) -> "CountedClient":
        """A client of its own with its own request counter (the tracker's S3 client)."""
        counter = RequestCounter()
        return CountedClient(self._make(service, counter), counter)

    def _make(self, service: str, counter: RequestCounter):
        client = self.session.client(service, endpoint_url=self.endpoint_urls.get(service), config=self._config)
        client.meta.events.register("before-send", counter)
        return client

    @property
    def s3(self):
        return self.get("s3")

    @property
    def runtime(self):
        return self.get("sagemaker-runtime")

    def origin(self) -> str:
        """Identifies the AWS target (region + endpoints) a journal row belongs to, so a client
        never polls rows written against another region or an earlier local stack."""
        return "|".join([self.region or "", self.s3.meta.endpoint_url, self.runtime.meta.endpoint_url])


@dataclass(frozen=True)
class CountedClient:
    client: object
    counter: RequestCounter


@dataclass(frozen=True)
class Problem:
    """A failed AWS call, said the way a user can act on."""

    code: str
    message: str
    permanent: bool


def explain(exc: BaseException, *, bucket: str | None = None, endpoint_name: str | None = None) -> Problem:
    """Turn a botocore/boto3 exception into one actionable line."""
    if isinstance(exc, bx.NoCredentialsError):
        return Problem("NoCredentials", "No AWS credentials found: configure a profile (aws configure / "
                       "aws sso login), set AWS_PROFILE, or try the local stack with %sm_async local start.", True)
    if isinstance(exc, (bx.PartialCredentialsError, bx.CredentialRetrievalError, bx.TokenRetrievalError,
                        bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError)):
        return Problem("CredentialsError", f"AWS credentials could not be loaded ({type(exc).__name__}): "
                       "refresh them (e.g. aws sso login) and try again.", True)
    if isinstance(exc, bx.NoRegionError):
        return Problem("NoRegion", "No AWS region configured: set AWS_DEFAULT_REGION or "
                       "%config SageMakerAsync.region.", True)
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError,
                        bx.ConnectionClosedError)):
        return Problem("ConnectionError", f"Could not reach AWS ({exc}); check the network or, for the "
                       "local stack, that it is still running.", False)
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "ClientError")
        text = str(error.get("Message") or exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return Problem(code, f"Bucket {bucket!r} does not exist: create it or set "
                           "%config SageMakerAsync.s3_input_path to a bucket you own.", True)
        if code in ("AccessDenied", "AccessDeniedException", "403", "Forbidden"):
            where = f" on bucket {bucket!r}" if bucket else ""
            return Problem(code, f"Access denied{where}: {text}. Ask for s3:PutObject/GetObject and "
                           "sagemaker:InvokeEndpointAsync permissions, or use another s3_input_path.", True)
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            return Problem(code, "Your AWS credentials have expired: refresh them (aws sso login, or a new "
                           "session) and resubmit.", True)
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "UnrecognizedClientException"):
            return Problem(code, f"AWS rejected the credentials ({code}): check your profile or keys.", True)
        if code in ("ValidationError", "ValidationException") and "not found" in text.lower():
            name = f" {endpoint_name!r}" if endpoint_name else ""
            return Problem(code, f"Endpoint{name} not found: {text} Check the name and region "
                           "(aws sagemaker list-endpoints).", True)
        permanent = code in _PERMANENT_CODES or (status is not None and 400 <= status < 500
                                                 and "Throttl" not in code and status != 429)
        return Problem(code, f"{code}: {text}", permanent)
    return Problem(type(exc).__name__, f"{type(exc).__name__}: {exc}", False)
