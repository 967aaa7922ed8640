"""Identity by name (issue 13, mechanism 1) and error classification (mechanism 2), end to end on
the local stack: an output belongs to an invocation only if it was written after its invoke;
ids, Filenames and batch prefixes are never silently reused; resubmission is idempotent; what
botocore would retry never stops a batch or deletes an uploaded input."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from botocore.awsrequest import AWSResponse

import sm_async_nb as sma
from sm_async_nb.aws.s3uri import S3Uri
from sm_async_nb.records import Status

ROW = "5.1,3.5,1.4,0.2\n"


def echo(body: bytes, content_type: str):
    return body, "text/csv"


def shout(body: bytes, content_type: str):
    if b"fail" in body:
        raise ValueError("token expired, please log in again")  # the model's words, not the service's
    return body.upper(), "text/plain"


@pytest.fixture(scope="module")
def endpoints(stack):
    stack.add_endpoint("id-echo", model=echo)
    stack.add_endpoint("id-slow-echo", model=echo, delay=1.5)
    stack.add_endpoint("id-shout", model=shout)
    return {"echo": "id-echo", "slow": "id-slow-echo", "shout": "id-shout"}


@pytest.fixture
def client(stack, tmp_path):
    with stack.client(journal_path=tmp_path / "journal.sqlite3") as c:
        c.tracker.skew = 0.0  # outputs count only if written in the invoke's second or later
        yield c


def into_the_next_second() -> None:
    """Sleep until the wall clock is in a later second (real time: the stack is another process). An
    output written before this call is then from an earlier second than any invoke after it, and S3's
    LastModified may be truncated to the second."""
    time.sleep(1.0 - time.time() % 1.0 + 0.01)


def runtime_calls(stack, inference_id: str) -> int:
    return sum(r["inference_id"] == inference_id for r in stack.records())  # each request is an invocation


def test_a_reused_filename_after_forget_waits_for_its_own_output(client, endpoints):
    first = client.submit(endpoints["echo"], "old,data\n", filename="shared.csv").wait(timeout=30)
    assert first.raw() == b"old,data\n"
    first.forget()
    into_the_next_second()
    second = client.submit(endpoints["slow"], "new,data\n", filename="shared.csv")
    assert second.output_location.endswith("/shared.csv")
    assert second.refresh() is Status.PENDING  # the old object at the same key is not this invocation's
    assert second.wait(timeout=30).raw() == b"new,data\n"


def test_an_inference_id_reused_after_forget_is_not_completed_by_the_old_output(client, endpoints):
    client.submit(endpoints["echo"], "first\n", inference_id="reused-after-forget").wait(timeout=30).forget()
    into_the_next_second()
    again = client.submit(endpoints["slow"], "second\n", inference_id="reused-after-forget")
    assert again.refresh() is Status.PENDING
    assert again.wait(timeout=30).raw() == b"second\n"


def test_an_inference_id_reused_after_forget_on_the_same_endpoint_runs_again(client, endpoints, stack):
    # AWS does not deduplicate by id: the second request is a second invocation, and the client takes
    # only the output written after its own invoke.
    client.submit(endpoints["echo"], "first\n", inference_id="reused-same-endpoint").wait(timeout=30).forget()
    into_the_next_second()
    again = client.submit(endpoints["echo"], "second\n", inference_id="reused-same-endpoint")
    assert again.wait(timeout=30).raw() == b"second\n"
    assert runtime_calls(stack, "reused-same-endpoint") == 2


def test_a_batch_prefix_rerun_after_forget_gets_new_results(client, endpoints):
    batch = client.submit_many(endpoints["echo"], ["a\n", "b\n"], inference_id="prefix-again").wait(timeout=30)
    client.forget(batch.inference_ids)
    into_the_next_second()
    again = client.submit_many(endpoints["slow"], ["c\n", "d\n"], inference_id="prefix-again")
    assert again.refresh() == {"PENDING": 2}
    assert again.wait(timeout=30).result()[0].tolist() == ["c", "d"]


def test_rerunning_the_very_same_batch_continues_it_without_new_invocations(client, endpoints, stack):
    first = client.submit_many(endpoints["echo"], ["a\n", "b\n"], inference_id="same-again").wait(timeout=30)
    again = client.submit_many(endpoints["echo"], ["a\n", "b\n"], inference_id="same-again")
    assert again.batch_id == first.batch_id and again.status_counts() == {"COMPLETED": 2}
    assert [runtime_calls(stack, i) for i in again.inference_ids] == [1, 1]


def test_resubmitting_a_failed_handle_twice_makes_one_new_invocation(client, endpoints, stack):
    failed = client.submit(endpoints["shout"], "please fail\n")
    failed.wait(timeout=30)
    assert failed.status is Status.FAILED  # "expired" in the model's message is not the service's expiry
    first = failed.resubmit()
    second = failed.resubmit()
    assert first.inference_id == second.inference_id != failed.inference_id
    assert client.resubmit([failed.inference_id])[0].inference_id == first.inference_id
    assert runtime_calls(stack, first.inference_id) == 1
    assert first.wait(timeout=30).status is Status.FAILED  # same input, same model: fails again
    third = failed.resubmit()  # the chain's latest attempt failed: this one is a new attempt
    assert third.inference_id not in (failed.inference_id, first.inference_id)


def test_the_same_id_from_eight_threads_is_invoked_once(client, endpoints, stack):
    results, errors = [], []
    start = threading.Barrier(8)

    def send():
        start.wait()
        try:
            results.append(client.submit(endpoints["echo"], ROW, inference_id="from-many-threads").inference_id)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and results == ["from-many-threads"] * 8
    client.invocation("from-many-threads").wait(timeout=30)
    assert runtime_calls(stack, "from-many-threads") == 1


def test_id_prefixes_resolve_case_sensitively(client):
    from sm_async_nb import lookup
    from sm_async_nb.records import InvocationRecord

    client.journal.add_missing([InvocationRecord("Upper-1", "ep", origin=client.origin, submitted_at=1.0),
                                InvocationRecord("upper-2", "ep", origin=client.origin, submitted_at=2.0)])
    assert [r.inference_id for r in lookup.find(client.journal, "upper", origin=client.origin)] == ["upper-2"]
    assert [r.inference_id for r in lookup.find(client.journal, "Upp", origin=client.origin)] == ["Upper-1"]


def test_a_request_timeout_outlasting_the_retries_stops_only_its_own_request(client, endpoints, stack):
    payloads = [f"{i}\n" for i in range(60)]
    unlucky = {"n": 0}

    def request_timeout(params, **_):
        if params["headers"].get("X-Amzn-SageMaker-Inference-Id", "").endswith("-0007"):
            unlucky["n"] += 1
            return (AWSResponse("https://runtime.sagemaker/", 400, {}, None),
                    {"Error": {"Code": "RequestTimeout", "Message": "Your socket connection timed out."},
                     "ResponseMetadata": {"HTTPStatusCode": 400}})
        return None

    client.aws.runtime.meta.events.register("before-call.sagemaker-runtime.InvokeEndpointAsync", request_timeout)
    batch = client.submit_many(endpoints["echo"], payloads, inference_id="timeout-once")
    assert unlucky["n"] == 1
    assert batch.status_counts().get("ERROR") == 1  # the other 59 were sent
    [part] = [p for p in batch.parts() if p.status is Status.ERROR]
    assert "RequestTimeout" in part.error and "transient" in part.error
    location = S3Uri.parse(part.input_location)  # the uploaded input is kept for the resend
    stack.boto3_client("s3").head_object(Bucket=location.bucket, Key=location.key)
    client.aws.runtime.meta.events.unregister("before-call.sagemaker-runtime.InvokeEndpointAsync", request_timeout)
    assert [i.inference_id for i in batch.resubmit()] == [part.inference_id]
    assert batch.wait(timeout=60).status_counts() == {"COMPLETED": 60}


def test_throttled_uploads_never_stop_the_batch(client, endpoints):
    def slow_down(params, **_):
        if params["url_path"].endswith("-0002.csv"):
            return (AWSResponse("https://s3.amazonaws.com/", 503, {}, None),
                    {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                     "ResponseMetadata": {"HTTPStatusCode": 503}})
        return None

    client.aws.s3.meta.events.register("before-call.s3.PutObject", slow_down)
    batch = client.submit_many(endpoints["echo"], [f"{i}\n" for i in range(10)], inference_id="throttled")
    counts = batch.status_counts()
    assert counts["ERROR"] == 1 and counts.get("PENDING", 0) + counts.get("COMPLETED", 0) == 9
    [part] = [p for p in batch.parts() if p.status is Status.ERROR]
    assert "SlowDown" in part.error and part.input_location is None  # never written, and the journal says so
    client.aws.s3.meta.events.unregister("before-call.s3.PutObject", slow_down)
    batch.resubmit()  # the payload was held in memory: it is uploaded and sent now
    assert batch.wait(timeout=60).status_counts() == {"COMPLETED": 10}


def test_resubmit_sends_what_it_can_when_a_part_was_never_uploaded(stack, endpoints, tmp_path):
    journal = tmp_path / "shared.sqlite3"

    def slow_down(params, **_):
        if params["url_path"].endswith("-0001.csv"):
            return (AWSResponse("https://s3.amazonaws.com/", 503, {}, None),
                    {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                     "ResponseMetadata": {"HTTPStatusCode": 503}})
        return None

    with stack.client(journal_path=journal) as first:
        first.aws.s3.meta.events.register("before-call.s3.PutObject", slow_down)
        batch = first.submit_many(endpoints["shout"], ["fail\n", "x\n", "fail\n"], inference_id="partly")
        assert batch.wait(timeout=30).status_counts() == {"FAILED": 2, "ERROR": 1}
    with stack.client(journal_path=journal) as later:  # a new process: the unsent payload is not held any more
        again = later.batch("batch-partly").resubmit()
        assert len(again) == 2  # the two FAILED parts, with new ids, reusing their inputs
        never = later.batch("batch-partly").parts()[1]
        assert never.status is Status.ERROR and never.input_location is None
        assert "Not resubmitted" in never.error and "submit the payload again" in never.error
        with pytest.raises(sma.ValidationError, match="no input in S3 to reuse"):
            later.invocation(never.inference_id).resubmit()  # one invocation: the reason, as an error


def test_a_rerun_after_a_permanent_error_keeps_the_new_input_location(client, stack):
    def deny_describe(**_):  # without sagemaker:DescribeEndpoint the invoke is what finds the endpoint missing
        return (AWSResponse("https://api.sagemaker/", 400, {}, None),
                {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}})

    client.aws.get("sagemaker").meta.events.register("before-call.sagemaker.DescribeEndpoint", deny_describe)
    with pytest.raises(sma.SubmissionError, match="not found"):
        client.submit("id-later", ROW, inference_id="later-1")
    row = client.journal.get("later-1")
    assert row.status is Status.ERROR and row.input_location is None  # removed, and the journal says so
    stack.add_endpoint("id-later", model=echo)
    inv = client.submit("id-later", ROW, inference_id="later-1")  # the same request, re-run
    assert inv.input_location and inv.wait(timeout=30).raw() == ROW.encode()


@pytest.mark.parametrize("index", [
    pd.date_range("2026-12-01", periods=6, freq="h", tz="UTC", name="when"),
    pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]], names=["group", "n"]),
    pd.Index(["x", "y", "z", "u", "v", "w"], name="key"),
], ids=["datetime", "multi", "str"])
def test_results_align_to_datetime_and_multi_indexes(client, endpoints, index):
    frame = pd.DataFrame({"a": range(6), "b": range(6)}, index=index)
    batch = client.submit_dataframe(endpoints["echo"], frame, rows_per_request=4)
    result = batch.wait(timeout=30).result()
    assert result.index.equals(index) and list(result.index.names) == list(index.names)
    assert result[0].tolist() == list(range(6)) and "aligned" not in result.attrs


def test_an_index_that_cannot_be_kept_says_so(client, endpoints):
    frame = pd.DataFrame({"a": range(3)}, index=pd.IntervalIndex.from_breaks([0, 1, 2, 3]))
    result = client.submit_dataframe(endpoints["echo"], frame, rows_per_request=2).wait(timeout=30).result()
    assert result.attrs["aligned"] is False and "IntervalIndex" in result.attrs["note"]
    assert result[0].tolist() == [0, 1, 2]
