"""AWS errors classified and explained, one table: each row is an error botocore really raises."""

from __future__ import annotations

import botocore.exceptions as bx
import pytest

from sm_async_nb.aws.clients import explain, is_transient


def client_error(code: str, status: int, message: str = "the service said so", operation: str = "PutObject"):
    return bx.ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


CASES = [
    # (error, kind, transient, stops the batch, words the message must contain)
    (bx.NoCredentialsError(), "credentials", False, True, ["No AWS credentials", "aws sso login"]),
    (bx.TokenRetrievalError(provider="sso", error_msg="expired"), "credentials", False, True, ["refresh them"]),
    (bx.NoRegionError(), "region", False, True, ["AWS_DEFAULT_REGION"]),
    (bx.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "connection", True, True,
     ["Could not reach AWS", "still running"]),
    (bx.ReadTimeoutError(endpoint_url="http://x"), "connection", True, True, ["Could not reach AWS"]),
    (client_error("NoSuchBucket", 404), "no_bucket", False, True, ["'my-bucket' does not exist", "s3_input_path"]),
    (client_error("AccessDenied", 403), "access_denied", False, True,
     ["Access denied on bucket 'my-bucket' (PutObject needs s3:PutObject)", "Ask for s3:PutObject"]),
    (client_error("AccessDenied", 403, "Access Denied", "ListObjectsV2"), "access_denied", False, True,
     ["(ListObjectsV2 needs s3:ListBucket)", "Ask for s3:ListBucket"]),
    (client_error("AccessDenied", 403, "Access Denied", "HeadObject"), "access_denied", False, True,
     ["needs s3:GetObject"]),
    (client_error("AccessDeniedException", 400, "not authorized", "InvokeEndpointAsync"), "access_denied", False,
     True, ["Access denied (InvokeEndpointAsync needs sagemaker:InvokeEndpointAsync)"]),
    (client_error("ExpiredToken", 400), "credentials", False, True, ["expired", "aws sso login"]),
    (client_error("InvalidAccessKeyId", 403), "credentials", False, True, ["rejected the credentials"]),
    (client_error("ValidationError", 400, "Endpoint foo of account 1 not found."), "validation", False, True,
     ["Endpoint 'ep' not found", "list-endpoints"]),
    (client_error("ValidationError", 400, "Header too long"), "validation", False, True, ["ValidationError"]),
    (client_error("404", 404, "Not Found", "HeadObject"), "not_found", False, False, ["404"]),
    (client_error("RequestTimeout", 400), "transient", True, False, ["RequestTimeout", "resubmit()"]),
    (client_error("SlowDown", 503), "transient", True, False, ["SlowDown"]),
    (client_error("ThrottlingException", 400), "transient", True, False, ["ThrottlingException"]),
    (client_error("TooManyRequestsException", 429), "transient", True, False, ["TooManyRequests"]),
    (client_error("InternalFailure", 500), "transient", True, False, ["InternalFailure"]),
    (client_error("ServiceUnavailable", 503), "transient", True, False, ["ServiceUnavailable"]),
    (client_error("InvalidArgument", 400), "permanent", False, False, ["InvalidArgument"]),
    (RuntimeError("a bug"), "permanent", False, False, ["RuntimeError: a bug"]),
]


@pytest.mark.parametrize("error, kind, transient, stops, words", CASES,
                         ids=[f"{type(c[0]).__name__}:{(getattr(c[0], 'response', None) or {}).get('Error', {}).get('Code', '')}"
                              for c in CASES])
def test_explain(error, kind, transient, stops, words):
    problem = explain(error, bucket="my-bucket", endpoint_name="ep")
    assert problem.kind == kind
    assert problem.permanent is not transient
    assert problem.stops_batch is stops
    for word in words:
        assert word in problem.message
    assert "\n" not in problem.message  # one line


@pytest.mark.parametrize("code, status", [("RequestTimeout", 400), ("RequestTimeoutException", 408),
                                          ("PriorRequestNotComplete", 400), ("Throttling", 400),
                                          ("RequestLimitExceeded", 503), ("Whatever", 502)])
def test_transient_follows_botocores_standard_retry_checkers(code, status):
    assert is_transient(client_error(code, status))


def test_a_429_without_a_code_is_transient_where_botocore_retries_it():
    from botocore.retries import standard

    # Newer botocore releases retry a bare 429 (ThrottlingStatusCodeChecker); older ones do not.
    assert is_transient(client_error("", 429)) is hasattr(standard, "ThrottlingStatusCodeChecker")


@pytest.mark.parametrize("code, status", [("AccessDenied", 403), ("ValidationError", 400), ("NoSuchKey", 404)])
def test_not_transient(code, status):
    assert not is_transient(client_error(code, status))
