"""Every InvokeEndpointAsync rule at its boundaries, as botocore's model states it."""

from __future__ import annotations

import pytest

from sm_async_nb import ValidationError
from sm_async_nb.contract import validation

OK = object()


def check(member, value):
    try:
        validation.check_member(member, value)
    except ValidationError as exc:
        assert exc.parameter == member
        assert member in str(exc)
        return exc
    return OK


@pytest.mark.parametrize("member, value, valid", [
    ("RequestTTLSeconds", 59, False),
    ("RequestTTLSeconds", 60, True),
    ("RequestTTLSeconds", 21600, True),
    ("RequestTTLSeconds", 21601, False),
    ("RequestTTLSeconds", "600", False),
    ("RequestTTLSeconds", True, False),
    ("RequestTTLSeconds", 600.0, False),
    ("InvocationTimeoutSeconds", 0, False),
    ("InvocationTimeoutSeconds", 1, True),
    ("InvocationTimeoutSeconds", 3600, True),
    ("InvocationTimeoutSeconds", 3601, False),
    ("CustomAttributes", "a" * 1024, True),
    ("CustomAttributes", "a" * 1025, False),
    ("CustomAttributes", "café", False),
    ("CustomAttributes", "trace=1\r\nX-Injected: 1", False),
    ("CustomAttributes", "c000b4f9-df62-4c85-a0bf-7c525f9104a4,trace=on", True),
    ("InferenceId", "x" * 64, True),
    ("InferenceId", "x" * 65, False),
    ("InferenceId", "", False),
    ("InferenceId", " leading", False),
    ("InferenceId", "\tleading", False),
    ("InferenceId", "inner space ok", True),
    ("InferenceId", "é", False),
    ("EndpointName", "my-endpoint", True),
    ("EndpointName", "a" * 63, True),
    ("EndpointName", "a" * 64, False),
    ("EndpointName", "", False),
    ("EndpointName", "-leading", False),
    ("EndpointName", "trailing-", False),
    ("EndpointName", "under_score", False),
    ("EndpointName", "a--b", True),
    ("ContentType", "text/csv", True),
    ("ContentType", "x" * 1025, False),
    ("ContentType", "text/csv\n", False),
    ("Accept", "application/json", True),
    ("Accept", "ünicode", False),
    ("S3OutputPathExtension", "run-1/part_2", True),
    ("S3OutputPathExtension", "s3:bucket", False),
    ("S3OutputPathExtension", "https:x", False),
    ("S3OutputPathExtension", "a b", False),
    ("S3OutputPathExtension", "a" * 512, True),
    ("S3OutputPathExtension", "a" * 513, False),
    ("S3OutputPathExtension", "", False),
    ("Filename", "out.json", True),
    ("Filename", "a.b.c", False),
    ("Filename", "_start", False),
    ("Filename", "x" * 32, True),
    ("Filename", "x" * 33, False),
    ("InputLocation", "s3://bucket/key", True),
    ("InputLocation", "https://bucket.s3.amazonaws.com/key", True),
    ("InputLocation", "ftp://bucket/key", False),
    ("InputLocation", "s3://", False),
])
def test_rule_boundaries(member, value, valid):
    if member not in validation.rules():  # newer than the installed botocore (e.g. the boto3 floor's)
        assert "is not a parameter of InvokeEndpointAsync in the installed botocore; upgrade boto3/botocore" \
            in str(check(member, value))
        return
    outcome = check(member, value)
    assert (outcome is OK) == valid, outcome


def test_messages_name_parameter_value_and_rule():
    with pytest.raises(ValidationError) as caught:
        validation.check_member("RequestTTLSeconds", 59)
    assert str(caught.value) == "RequestTTLSeconds 59 is invalid: it must be an integer from 60 to 21600."


def test_long_values_are_shortened_in_messages():
    with pytest.raises(ValidationError) as caught:
        validation.check_member("CustomAttributes", "z" * 5000)
    assert len(str(caught.value)) < 200


def test_limits_come_from_botocore_model():
    rules = validation.rules()
    assert rules["InvocationTimeoutSeconds"].max == 3600
    if "Filename" in rules:  # newer botocore releases only (SPEC §2)
        assert rules["Filename"].header == "X-Amzn-SageMaker-Filename"
    assert validation.inline_body_limit() == 128_000  # the model's, or the documented limit without Body


def test_validate_request_maps_python_names_and_drops_none():
    api = validation.validate_request({"endpoint_name": "ep", "content_type": "text/csv", "accept": None,
                                       "request_ttl_seconds": 120})
    assert api == {"EndpointName": "ep", "ContentType": "text/csv", "RequestTTLSeconds": 120}


def test_validate_request_needs_endpoint_and_known_names():
    with pytest.raises(ValidationError, match="EndpointName is required"):
        validation.validate_request({"content_type": "text/csv"})
    with pytest.raises(ValidationError, match="Unknown parameter"):
        validation.validate_request({"endpoint_name": "ep", "ttl": 5})


def test_inline_body_limit(monkeypatch):
    monkeypatch.setattr(validation, "supports_inline_body", lambda: True)  # as with the newest botocore
    validation.check_inline_body(128_000)
    with pytest.raises(ValidationError, match="128,001 bytes is too large to send inline"):
        validation.check_inline_body(128_001)


def test_inline_needs_botocore_body_support(monkeypatch):
    monkeypatch.setattr(validation, "supports_inline_body", lambda: False)
    with pytest.raises(ValidationError, match="inline=True needs a botocore"):
        validation.check_inline_body(10)


@pytest.mark.parametrize("java, python", [
    (r"\p{ASCII}*", r"[\x00-\x7f]*"),
    (r"\A\S[\p{Print}]*\z", r"\A\S[\x20-\x7e]*\Z"),
    (r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$", r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$"),
])
def test_java_patterns_translate(java, python):
    assert validation._java_regex_to_python(java) == python
