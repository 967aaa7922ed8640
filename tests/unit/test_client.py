"""AsyncInferenceClient against moto's in-process mock: uploads, invoke parameters, idempotency,
batches, results and every user error leaving nothing behind."""

from __future__ import annotations

import io
import json

import boto3
import pandas as pd
import pytest
import requests
from botocore.exceptions import EndpointConnectionError

import sm_async_nb as sma
from sm_async_nb.aws.s3uri import S3Uri
from sm_async_nb.contract import validation
from sm_async_nb.records import Status

# InvokeEndpointAsync members of newer botocore releases than the boto3 floor's (SPEC §2).
NEWER = {"Filename", "S3OutputPathExtension"} <= set(validation.rules())


@pytest.fixture
def sent(client):
    """Every InvokeEndpointAsync and PutObject request as serialised on the wire."""
    calls = {"invoke": [], "put": []}

    def record(kind):
        return lambda params, **_: calls[kind].append(params)

    client.aws.runtime.meta.events.register("before-call.sagemaker-runtime.InvokeEndpointAsync", record("invoke"))
    client.aws.s3.meta.events.register("before-call.s3.PutObject", record("put"))
    return calls


def put_output(location: str, body: bytes, content_type: str) -> None:
    uri = S3Uri.parse(location)
    boto3.client("s3").put_object(Bucket=uri.bucket, Key=uri.key, Body=body, ContentType=content_type)


def test_submit_uploads_input_named_by_inference_id_and_sends_every_parameter(client, sent):
    newer = {"s3_output_path_extension": "exp/1", "filename": "out.json"} if NEWER else {}
    inv = client.submit("my-endpoint", "5.1,3.5,1.4,0.2\n", content_type="text/csv", accept="application/json",
                        custom_attributes="trace=on", inference_id="run-1", request_ttl_seconds=120,
                        invocation_timeout_seconds=60, label="first", **newer)
    assert inv.inference_id == "run-1"
    assert inv.input_location == "s3://input-bucket/payloads/run-1.csv"
    body = boto3.client("s3").get_object(Bucket="input-bucket", Key="payloads/run-1.csv")
    assert body["Body"].read() == b"5.1,3.5,1.4,0.2\n"
    assert body["ContentType"] == "text/csv"
    [invoke] = sent["invoke"]
    headers = invoke["headers"]
    assert invoke["url_path"] == "/endpoints/my-endpoint/async-invocations"
    assert headers["X-Amzn-SageMaker-InputLocation"] == "s3://input-bucket/payloads/run-1.csv"
    assert headers["X-Amzn-SageMaker-Content-Type"] == "text/csv"
    assert headers["X-Amzn-SageMaker-Accept"] == "application/json"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "trace=on"
    assert headers["X-Amzn-SageMaker-Inference-Id"] == "run-1"
    assert headers["X-Amzn-SageMaker-RequestTTLSeconds"] == "120"
    assert headers["X-Amzn-SageMaker-InvocationTimeoutSeconds"] == "60"
    if NEWER:
        assert headers["X-Amzn-SageMaker-S3OutputPathExtension"] == "exp/1"
        assert headers["X-Amzn-SageMaker-Filename"] == "out.json"
    assert inv.status is Status.PENDING and inv.label == "first"
    assert inv.output_location.startswith("s3://")


def test_generated_ids_are_fresh_and_content_type_inferred(client, sent):
    a = client.submit("ep", {"instances": [[1, 2]]})
    b = client.submit("ep", {"instances": [[1, 2]]})
    assert a.inference_id != b.inference_id
    assert [c["headers"]["X-Amzn-SageMaker-Content-Type"] for c in sent["invoke"]] == ["application/json"] * 2
    assert a.input_location.endswith(".json")


@pytest.mark.parametrize("kwargs, parameter", [
    ({"request_ttl_seconds": 59}, "RequestTTLSeconds"),
    ({"invocation_timeout_seconds": 3601}, "InvocationTimeoutSeconds"),
    ({"custom_attributes": "x" * 1025}, "CustomAttributes"),
    ({"inference_id": " lead"}, "InferenceId"),
    ({"filename": "a.b.c"}, "Filename"),
    ({"s3_output_path_extension": "s3:x"}, "S3OutputPathExtension"),
    ({"content_type": "täxt/csv"}, "ContentType"),
    ({"accept": "a\nb"}, "Accept"),
])
def test_invalid_parameter_uploads_nothing_and_journals_nothing(client, sent, kwargs, parameter, list_keys):
    with pytest.raises(sma.ValidationError) as caught:
        client.submit("ep", "1,2", **kwargs)
    assert caught.value.parameter == parameter
    assert list_keys("input-bucket") == []
    assert sent["invoke"] == [] and client.records() == []


def test_invalid_endpoint_name_and_payload(client, list_keys):
    with pytest.raises(sma.ValidationError, match="EndpointName"):
        client.submit("bad_name", "1")
    with pytest.raises(sma.ValidationError, match="Cannot send a set payload"):
        client.submit("ep", {1, 2})
    assert list_keys("input-bucket") == [] and client.records() == []


def test_one_bad_payload_in_a_batch_sends_none(client, sent, list_keys):
    with pytest.raises(sma.ValidationError, match="payload 2"):
        client.submit_many("ep", ["1,2", "3,4", b""])
    assert list_keys("input-bucket") == [] and sent["invoke"] == [] and client.records() == []


def test_retrying_with_the_same_inference_id_is_idempotent(client, sent, list_keys):
    first = client.submit("ep", "1,2,3", inference_id="job-7")
    again = client.submit("ep", "1,2,3", inference_id="job-7")
    assert again == first
    assert len(sent["invoke"]) == 1
    assert list_keys("input-bucket") == ["payloads/job-7.csv"]
    with pytest.raises(sma.ValidationError, match="already used for a different request"):
        client.submit("ep", "9,9,9", inference_id="job-7")


def test_an_interrupted_submission_is_completed_by_resubmit_with_same_id(client, sent, list_keys):
    original = client.aws.runtime.invoke_endpoint_async
    client.aws.runtime.invoke_endpoint_async = lambda **kw: (_ for _ in ()).throw(
        EndpointConnectionError(endpoint_url="https://runtime.example"))
    with pytest.raises(sma.SubmissionError, match="Could not reach AWS") as caught:
        client.submit("ep", "1,2,3", inference_id="flaky")
    assert caught.value.inference_id == "flaky"
    inv = client.invocation("flaky")
    assert inv.status is Status.ERROR and list_keys("input-bucket") == ["payloads/flaky.csv"]
    client.aws.runtime.invoke_endpoint_async = original
    again = inv.resubmit()
    assert again.inference_id == "flaky" and again.status is Status.PENDING
    assert list_keys("input-bucket") == ["payloads/flaky.csv"]
    assert len(sent["invoke"]) == 1


@pytest.mark.skipif(not validation.supports_inline_body(), reason="this botocore has no InvokeEndpointAsync Body "
                    "(newer releases only); test_validation checks the error that says so")
def test_inline_sends_body_and_uploads_nothing(client, sent, list_keys):
    inv = client.submit("ep", "1,2,3", inline=True)
    assert inv.input_location is None
    assert sent["invoke"][0]["body"] == b"1,2,3"
    assert "X-Amzn-SageMaker-InputLocation" not in sent["invoke"][0]["headers"]
    assert list_keys("input-bucket") == []
    with pytest.raises(sma.ValidationError, match="too large to send inline"):
        client.submit("ep", "x" * 128_001, inline=True)


def test_kms_and_expected_bucket_owner_are_sent_when_configured(moto_aws, tmp_path):
    settings = sma.SageMakerAsync(kms_key_id="alias/payloads", expected_bucket_owner="123456789012")
    with sma.AsyncInferenceClient("s3://input-bucket/p/", journal_path=tmp_path / "j", settings=settings) as c:
        puts = []
        c.aws.s3.meta.events.register("before-call.s3.PutObject", lambda params, **_: puts.append(params))
        c.submit("ep", "1")
    headers = puts[0]["headers"]
    assert headers["x-amz-server-side-encryption"] == "aws:kms"
    assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == "alias/payloads"
    assert headers["x-amz-expected-bucket-owner"] == "123456789012"


def test_missing_bucket_is_one_clear_error_and_a_journaled_error(moto_aws, tmp_path):
    with sma.AsyncInferenceClient("s3://no-such-bucket/p/", journal_path=tmp_path / "j") as c:
        with pytest.raises(sma.SubmissionError, match="Bucket 'no-such-bucket' does not exist"):
            c.submit("ep", "1", inference_id="x1")
        assert c.invocation("x1").status is Status.ERROR
        assert "does not exist" in c.invocation("x1").error


def test_batch_with_missing_bucket_fails_fast(moto_aws, tmp_path):
    with sma.AsyncInferenceClient("s3://no-such-bucket/p/", journal_path=tmp_path / "j", max_workers=1) as c:
        batch = c.submit_many("ep", [str(i) for i in range(5)])
        counts = batch.status_counts()
        assert counts == {"ERROR": 5}
        errors = [p.error for p in batch.parts()]
        assert errors[0].startswith("Bucket 'no-such-bucket' does not exist")
        assert all(e.startswith("Not submitted: an earlier request failed") for e in errors[1:])


def test_no_credentials(moto_aws, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with sma.AsyncInferenceClient("s3://input-bucket/p/", journal_path=tmp_path / "j") as c:
        with pytest.raises(sma.SubmissionError, match="No AWS credentials found"):
            c.submit("ep", "1")


def test_no_region_is_a_configuration_error(tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(sma.ConfigurationError, match="No AWS region configured"):
        sma.AsyncInferenceClient("s3://input-bucket/p/", journal_path=tmp_path / "j")


def test_default_input_bucket_is_created_like_the_sagemaker_sdk(moto_aws, tmp_path):
    with sma.AsyncInferenceClient(journal_path=tmp_path / "j") as c:
        inv = c.submit("ep", "1")
        assert inv.input_location.startswith("s3://sagemaker-us-east-1-123456789012/sm-async-nb/inputs/")


def test_result_of_completed_invocation_is_a_dataframe(client):
    inv = client.submit("ep", "1,2\n3,4\n", accept="text/csv")
    put_output(inv.output_location, b"0.1\n0.9\n", "text/csv")
    assert inv.latency is None  # not finished yet
    assert inv.refresh() is Status.COMPLETED
    frame = inv.result()
    assert frame[0].tolist() == [0.1, 0.9]
    assert inv.raw() == b"0.1\n0.9\n"
    assert inv.latency < 60  # seconds from the submission to the output's LastModified


def test_failure_object_becomes_inference_failed_with_its_text(client):
    requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/async-endpoint-results",
                  json={"results": [{"is_failure": True, "data": "ModelError: shape mismatch (4 != 3)"}]})
    inv = client.submit("ep", "1,2,3")
    assert inv.wait(timeout=5).status is Status.FAILED
    with pytest.raises(sma.InferenceFailed, match="shape mismatch") as caught:
        inv.result()
    assert caught.value.failure_reason == "ModelError: shape mismatch (4 != 3)"
    assert caught.value.failure_location == inv.failure_location


def test_pending_result_is_not_ready(client):
    inv = client.submit("ep", "1")
    boto3.client("s3").delete_object(**_bk(inv.output_location))
    with pytest.raises(sma.ResultNotReady, match="not finished yet"):
        inv.result()
    with pytest.raises(TimeoutError, match="still unfinished"):
        inv.wait(timeout=0.3)


def _bk(location):
    uri = S3Uri.parse(location)
    return {"Bucket": uri.bucket, "Key": uri.key}


def test_dataframe_split_into_requests_in_order(client):
    df = pd.DataFrame({"a": range(1000), "b": [i * 0.5 for i in range(1000)]},
                      index=[f"row{i}" for i in range(1000)])
    batch = client.submit_dataframe("ep", df, rows_per_request=143)
    parts = batch.parts()
    assert len(parts) == 7
    assert [(p.row_start, p.row_count) for p in parts] == [(i * 143, min(143, 1000 - i * 143)) for i in range(7)]
    sent = [pd.read_csv(io.BytesIO(boto3.client("s3").get_object(**_bk(p.input_location))["Body"].read()),
                        header=None) for p in parts]
    assert pd.concat(sent, ignore_index=True).values.tolist() == df.values.tolist()
    # The "model" answers one row per input row, out of order in time: the result is realigned.
    for p in reversed(parts):
        rows = df.iloc[p.row_start:p.row_start + p.row_count]
        put_output(p.output_location, (rows["a"] * 2).to_csv(header=False, index=False).encode(), "text/csv")
    result = batch.wait(timeout=10).result()
    assert result.index.tolist() == df.index.tolist()
    assert result[0].tolist() == (df["a"] * 2).tolist()


SERVING_OUTPUTS = {  # what each kind of container answers for n rows (SPEC §19)
    "split": lambda rows: {"predictions": [int(a) * 2 for a in rows["a"]]},                      # MLflow
    "instances": lambda rows: {"predictions": [[int(a) * 2, 0.5] for a in rows["a"]]},           # TF Serving
    "inputs": lambda rows: [{"generated_text": f"row {int(a) * 2}"} for a in rows["a"]],         # Hugging Face
    "records": lambda rows: {"outputs": [int(a) * 2 for a in rows["a"]]},
}


@pytest.mark.parametrize("json_format", SERVING_OUTPUTS)
def test_dataframes_in_a_serving_containers_json_come_back_aligned(client, json_format):
    df = pd.DataFrame({"a": range(25), "b": [i * 0.5 for i in range(25)]}, index=[f"r{i}" for i in range(25)])
    batch = client.submit_dataframe("ep", df, rows_per_request=10, content_type="application/json",
                                    json_format=json_format)
    parts = batch.parts()
    for p in reversed(parts):
        body = json.loads(boto3.client("s3").get_object(**_bk(p.input_location))["Body"].read())
        rows = df.iloc[p.row_start:p.row_start + p.row_count]
        expected = rows.values.tolist()
        assert body == {"records": expected, "split": {"dataframe_split": {"columns": ["a", "b"], "data": expected}},
                        "instances": {"instances": expected}, "inputs": {"inputs": expected}}[json_format]
        put_output(p.output_location, json.dumps(SERVING_OUTPUTS[json_format](rows)).encode(), "application/json")
    result = batch.wait(timeout=10).result()
    assert result.index.tolist() == df.index.tolist()
    first = result.iloc[:, 0].tolist()
    assert first == ([f"row {a * 2}" for a in df["a"]] if json_format == "inputs" else (df["a"] * 2).tolist())


def test_the_json_format_setting_lays_out_dataframes_sent_as_json(moto_aws, tmp_path):
    settings = sma.SageMakerAsync(json_format="instances")
    with sma.AsyncInferenceClient("s3://input-bucket/p/", journal_path=tmp_path / "j", settings=settings) as c:
        sent = [c.submit("ep", pd.DataFrame({"x": [1, 2]}), content_type="application/json"),
                c.submit("ep", pd.DataFrame({"x": [1, 2]}), content_type="application/json", json_format="records"),
                c.submit("ep", pd.DataFrame({"x": [1, 2]}))]  # CSV: the setting does not apply
        bodies = [boto3.client("s3").get_object(**_bk(inv.input_location))["Body"].read() for inv in sent]
    assert bodies == [b'{"instances":[[1],[2]]}', b"[[1],[2]]", b"1\n2\n"]


def test_batch_results_skip_or_raise_on_failed_parts(client):
    batch = client.submit_many("ep", ["1", "2", "3"], label="trio")
    parts = batch.parts()
    for i, p in enumerate(parts):
        if i == 1:
            boto3.client("s3").delete_object(**_bk(p.output_location))
            put_output(p.failure_location, b"ModelError: bad row", "text/plain")
        else:
            put_output(p.output_location, json.dumps([i * 10]).encode(), "application/json")
    batch.wait(timeout=10)
    assert batch.status_counts() == {"COMPLETED": 2, "FAILED": 1}
    with pytest.raises(sma.InferenceFailed, match="bad row"):
        batch.result()
    skipped = batch.result(errors="skip")
    assert skipped.index.tolist() == [0, 2] and skipped["prediction"].tolist() == [0, 20]


def test_batch_inference_id_prefix_makes_reruns_continue_not_duplicate(client, sent):
    first = client.submit_many("ep", ["1", "2", "3"], inference_id="nightly")
    assert first.inference_ids == ["nightly-0000", "nightly-0001", "nightly-0002"]
    again = client.submit_many("ep", ["1", "2", "3"], inference_id="nightly")
    assert again.batch_id == first.batch_id and len(sent["invoke"]) == 3
    with pytest.raises(sma.ValidationError, match="one filename per payload"):
        client.submit_many("ep", ["1", "2"], filename="out.json")


def test_expired_when_nothing_appears_in_time(client):
    inv = client.submit("ep", "1", request_ttl_seconds=60, invocation_timeout_seconds=1)
    boto3.client("s3").delete_object(**_bk(inv.output_location))
    record = inv.record
    client.tracker.refresh(now=record.invoked_at + 60 + 1 + client.tracker.grace - 1)
    assert inv.status is Status.PENDING
    client.tracker.refresh(now=record.invoked_at + 60 + 1 + client.tracker.grace + 1)
    assert inv.status is Status.EXPIRED
    with pytest.raises(sma.InferenceExpired, match="expired"):
        inv.result()


def test_await_returns_the_result(client):
    import asyncio

    inv = client.submit("ep", "1", accept="application/json")
    put_output(inv.output_location, b"[1, 2]", "application/json")

    async def main():
        return await inv

    assert asyncio.run(main())["prediction"].tolist() == [1, 2]


def test_validation_happens_before_any_network_call(moto_aws, tmp_path):
    with sma.AsyncInferenceClient(journal_path=tmp_path / "j") as c:
        with pytest.raises(sma.ValidationError, match="RequestTTLSeconds"):
            c.submit("ep", "1", request_ttl_seconds=10)
        assert c.aws.counter.counts == {}
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]] == ["input-bucket"]


def test_forget_and_resubmit_take_one_id_as_a_string_not_its_characters(client, stage_row):
    inv = client.submit("ep", "1,2\n", inference_id="one-string-id")
    stage_row(client.journal, inv.inference_id, status=sma.Status.ERROR, error="x")
    assert [i.inference_id for i in client.resubmit("one-string-id")] == ["one-string-id"]
    assert client.forget("one-string-id") == 1 and client.records() == []


def test_numpy_integers_are_accepted_for_integer_parameters(client, sent):
    import numpy as np

    inv = client.submit("ep", "1,2\n", request_ttl_seconds=np.int64(120), invocation_timeout_seconds=np.int32(30))
    assert sent["invoke"][0]["headers"]["X-Amzn-SageMaker-RequestTTLSeconds"] == "120"
    assert inv.record.request["request_ttl_seconds"] == 120 and type(inv.record.request["request_ttl_seconds"]) is int


@pytest.mark.parametrize("age", ["1", True, float("nan"), None, -1])
def test_prune_takes_a_number_of_days_and_forgets_nothing_otherwise(client, age, stage_row):
    inv = client.submit("ep", "1,2\n", inference_id="kept")
    stage_row(client.journal, inv.inference_id, status=sma.Status.ERROR, error="x", finished_at=0.0)
    with pytest.raises(sma.ValidationError, match="older_than_days must be a number of days"):
        client.prune(age)
    assert [r.inference_id for r in client.records()] == ["kept"]


@pytest.mark.parametrize("errors", ["bogus", ["raise"], None, 1])
def test_an_unknown_errors_mode_is_a_validation_error(errors):
    from sm_async_nb.results.loading import check_errors_mode

    with pytest.raises(sma.ValidationError, match="errors must be 'raise' or 'skip'") as caught:
        check_errors_mode(errors)
    assert isinstance(caught.value, ValueError) and caught.value.parameter == "errors"
    assert check_errors_mode("skip") == "skip"
