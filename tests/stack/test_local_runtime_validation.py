"""Every InvokeEndpointAsync rule is enforced by the runtime itself, as the service does.

One client process sends every bad request — through boto3 with its own parameter validation
switched off, or as raw HTTP where botocore cannot express the mistake — and each case is then
checked as its own test.
"""

from __future__ import annotations

import pytest
from stackhelp import run_client

BOTO_CASES = {
    "EndpointName-pattern": ("EndpointName", {"EndpointName": "bad_name"}),
    "EndpointName-length": ("EndpointName", {"EndpointName": "a" * 64}),
    "InputLocation-pattern": ("InputLocation", {"InputLocation": "ftp://bucket/key"}),
    "InputLocation-length": ("InputLocation", {"InputLocation": "s3://bucket/" + "k" * 1020}),
    "ContentType-length": ("ContentType", {"ContentType": "t" * 1025}),
    "Accept-length": ("Accept", {"Accept": "a" * 1025}),
    "CustomAttributes-length": ("CustomAttributes", {"CustomAttributes": "c" * 1025}),
    "InferenceId-length": ("InferenceId", {"InferenceId": "i" * 65}),
    "InferenceId-unprintable": ("InferenceId", {"InferenceId": "id\x7f"}),
    "RequestTTLSeconds-low": ("RequestTTLSeconds", {"RequestTTLSeconds": 59}),
    "RequestTTLSeconds-high": ("RequestTTLSeconds", {"RequestTTLSeconds": 21601}),
    "InvocationTimeoutSeconds-low": ("InvocationTimeoutSeconds", {"InvocationTimeoutSeconds": 0}),
    "InvocationTimeoutSeconds-high": ("InvocationTimeoutSeconds", {"InvocationTimeoutSeconds": 3601}),
    "S3OutputPathExtension-scheme": ("S3OutputPathExtension", {"S3OutputPathExtension": "s3:bucket/x"}),
    "S3OutputPathExtension-chars": ("S3OutputPathExtension", {"S3OutputPathExtension": "a b"}),
    "S3OutputPathExtension-length": ("S3OutputPathExtension", {"S3OutputPathExtension": "x" * 513}),
    "Filename-two-dots": ("Filename", {"Filename": "a.b.c"}),
    "Filename-first-char": ("Filename", {"Filename": "-out"}),
    "Filename-length": ("Filename", {"Filename": "f" * 33}),
    "Body-too-large": ("body", {"Body": b"x" * 128_001, "InputLocation": None}),
    "Body-and-InputLocation": ("Body and InputLocation", {"Body": b"1,2,3,4"}),
    "neither-Body-nor-InputLocation": ("Body and InputLocation", {"InputLocation": None}),
}
RAW_CASES = {
    "RequestTTLSeconds-not-integer": ("RequestTTLSeconds", {"X-Amzn-SageMaker-RequestTTLSeconds": "soon"}),
    "InvocationTimeoutSeconds-not-integer": ("InvocationTimeoutSeconds",
                                             {"X-Amzn-SageMaker-InvocationTimeoutSeconds": "1.5"}),
    "ContentType-non-ascii": ("ContentType", {"X-Amzn-SageMaker-Content-Type": "text/\u00e9"}),
    "InputLocation-empty": ("InputLocation", {"X-Amzn-SageMaker-InputLocation": ""}),
}

SCRIPT = """
import http.client
rt = boto3.client("sagemaker-runtime", config=Config(parameter_validation=False, retries={"max_attempts": 1}))
results = {}
for case, params in ARGS["boto"].items():
    kwargs = {"EndpointName": "local-async", "InputLocation": "s3://bucket-x/in.csv", "ContentType": "text/csv"}
    kwargs.update(params)
    if "Body" in kwargs and isinstance(kwargs["Body"], str):
        kwargs["Body"] = b"x" * 128_001 if kwargs["Body"] == "BIG" else kwargs["Body"].encode()
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        rt.invoke_endpoint_async(**kwargs)
        results[case] = [202, None, None]
    except ClientError as exc:
        results[case] = [exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"],
                         exc.response["Error"]["Message"]]
url = urllib.parse.urlparse(os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"])
for case, headers in ARGS["raw"].items():
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    headers = dict({"X-Amzn-SageMaker-InputLocation": "s3://bucket-x/in.csv"}, **headers)
    conn.putrequest("POST", "/endpoints/local-async/async-invocations")
    for name, value in headers.items():
        conn.putheader(name, value.encode("utf-8"))
    conn.putheader("Content-Length", "0")
    conn.endheaders()
    answer = conn.getresponse()
    body = json.loads(answer.read())
    results[case] = [answer.status, answer.getheader("x-amzn-ErrorType"), body.get("message")]
    conn.close()
emit(results)
"""


@pytest.fixture(scope="module")
def outcomes(stack):
    before = len(stack.records())
    boto = {case: {k: ("BIG" if isinstance(v, bytes) and len(v) > 1000 else
                       v.decode() if isinstance(v, bytes) else v) for k, v in params.items()}
            for case, (_, params) in BOTO_CASES.items()}
    raw = {case: headers for case, (_, headers) in RAW_CASES.items()}
    results = run_client(stack, SCRIPT, {"boto": boto, "raw": raw})
    return results, len(stack.records()) - before


@pytest.mark.parametrize("case", sorted(BOTO_CASES) + sorted(RAW_CASES))
def test_rule_violation_is_a_400_validation_error_naming_the_parameter(outcomes, case):
    results, _ = outcomes
    member = (BOTO_CASES.get(case) or RAW_CASES[case])[0]
    status, code, message = results[case]
    assert status == 400, results[case]
    assert code == "ValidationError"
    assert member in message


def test_rejected_requests_leave_no_invocation(outcomes):
    _, new_records = outcomes
    assert new_records == 0


def test_boundary_values_are_accepted(stack, unique):
    got = run_client(stack, """
        rt = boto3.client("sagemaker-runtime", config=Config(parameter_validation=False))
        a = rt.invoke_endpoint_async(EndpointName="local-async", Body=b"5.1,3.5,1.4,0.2", ContentType="text/csv",
                                     RequestTTLSeconds=60, InvocationTimeoutSeconds=3600,
                                     InferenceId="i" * 64, Filename="f" * 28 + ".csv",
                                     S3OutputPathExtension="a/b_c!*'()-.x")
        emit(a["ResponseMetadata"]["HTTPStatusCode"])
    """)
    assert got == 202
