"""Jobs (SPEC §16, issue 24) on the local stack: flow control seen through the runtime's own records,
background submission, pause / resume / cancel, retries, results as they come, attach."""

from __future__ import annotations

import asyncio
import threading
import time

import pandas as pd
import pytest
from botocore.exceptions import ClientError

import sm_async_nb as sma
from sm_async_nb.records import JobState, Status

SLOW_S = 0.15


def slow(body: bytes, content_type: str):
    time.sleep(SLOW_S)
    return body, "text/csv"


def picky(body: bytes, content_type: str):
    if body.startswith(b"boom"):
        raise ValueError("the model refuses boom")
    return body, "text/csv"


@pytest.fixture(scope="module")
def slow_endpoint(stack):
    stack.add_endpoint("jobs-slow", model=slow, concurrency=1, exist_ok=True)
    return "jobs-slow"


@pytest.fixture
def client(stack, tmp_path):
    with stack.client(journal_path=tmp_path / "journal.sqlite3", max_workers=8) as c:
        yield c


def most_at_once(records: list[dict], ids: set[str]) -> int:
    """The most of ``ids`` the runtime held at once (received, not yet finished): from its own records."""
    events = []
    for r in records:
        if r["inference_id"] in ids:
            events += [(r["received_at"], 1), (r["finished_at"] or float("inf"), -1)]
    held = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        held += step
        peak = max(peak, held)
    return peak


def payloads(n: int, tag: str) -> list[str]:
    return [f"{tag},{i}\n" for i in range(n)]


def test_a_fixed_window_holds_the_rest_queued(stack, client, slow_endpoint):
    batch = client.submit_many(slow_endpoint, payloads(10, "w"), max_pending=2, label="window")
    counts = batch.status_counts()
    assert counts.get("QUEUED", 0) >= 6, counts  # the window let two through; the rest wait, uploaded
    queued = [r for r in batch.parts() if r.status is Status.QUEUED]
    s3 = stack.boto3_client("s3")
    bucket, key = queued[0].input_location[len("s3://"):].split("/", 1)
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0  # queued means: its input is in S3
    batch.wait(timeout=60)
    assert batch.status_counts() == {"COMPLETED": 10}
    ids = set(batch.inference_ids)
    assert stack.wait_until_idle(10)
    assert most_at_once(stack.records(slow_endpoint), ids) <= 2
    assert batch.job_state is JobState.DONE
    assert batch.result()[0].tolist() == ["w"] * 10

    # The same batch sent at once: the runtime holds all of them (the contrast the window makes).
    at_once = client.submit_many(slow_endpoint, payloads(10, "all"))
    at_once.wait(timeout=60)
    assert stack.wait_until_idle(10)
    assert most_at_once(stack.records(slow_endpoint), set(at_once.inference_ids)) > 2


def test_background_returns_at_once_and_results_come_as_they_finish(stack, client, slow_endpoint):
    df = pd.DataFrame({"a": range(12), "b": range(100, 112)}, index=[f"r{i}" for i in range(12)])
    started = time.perf_counter()
    batch = client.submit_dataframe(slow_endpoint, df, rows_per_request=2, max_pending=1, background=True,
                                    label="bg")
    assert time.perf_counter() - started < SLOW_S * 6  # 6 requests of SLOW_S each, one at a time: not waited for
    assert not batch.done
    order, frames = [], []
    for inv in batch.as_completed(timeout=60):
        order.append((inv.finished_at, inv.inference_id))
        assert inv.status is Status.COMPLETED
    assert len(order) == 6 and len({i for _, i in order}) == 6
    assert [t for t, _ in order] == sorted(t for t, _ in order)  # finishing order
    for frame in batch.iter_results(timeout=5):
        frames.append(frame)
    assert sorted(i for f in frames for i in f.index) == sorted(df.index)  # indexed like the input rows
    assert all(len(f) == 2 and f.index[0].startswith("r") for f in frames)
    assert batch.rate_per_min is not None and batch.rate_per_min > 0
    assert batch.eta is not None  # done: ETA is now
    assert batch.timeline(freq="1s")["queued"].max() >= 3  # it was held queued, and the timeline shows it


def test_pause_holds_everything_and_resume_continues(stack, client, slow_endpoint):
    batch = client.submit_many(slow_endpoint, payloads(8, "p"), max_pending=1, label="pausable")
    assert batch.pause() is True
    assert batch.job_state is JobState.PAUSED
    time.sleep(SLOW_S * 3)
    ids = set(batch.inference_ids)
    seen = {r["inference_id"] for r in stack.records(slow_endpoint)} & ids
    time.sleep(SLOW_S * 4)
    assert {r["inference_id"] for r in stack.records(slow_endpoint)} & ids == seen  # nothing sent while paused
    queued = batch.status_counts().get("QUEUED", 0)
    assert queued >= 6
    with pytest.raises(sma.SubmissionError, match="paused with .* queued"):
        batch.wait(timeout=30)
    assert batch.resume() is True and batch.resume() is False  # running already
    batch.wait(timeout=60)
    assert batch.status_counts() == {"COMPLETED": 8}


def test_cancel_keeps_what_runs_and_removes_only_our_inputs(stack, client, slow_endpoint):
    s3 = stack.boto3_client("s3")
    s3.create_bucket(Bucket="jobs-user")
    for i in range(6):
        s3.put_object(Bucket="jobs-user", Key=f"in/{i}.csv", Body=f"u,{i}\n".encode(), ContentType="text/csv")
    theirs = client.submit_s3(slow_endpoint, "s3://jobs-user/in/", max_pending=1)
    ours = client.submit_many(slow_endpoint, payloads(6, "c"), max_pending=1)
    deadline = time.monotonic() + 10
    while all(r.status is Status.QUEUED for r in ours.parts()):  # the job thread's first turn invokes one
        assert time.monotonic() < deadline, "the window never let a request through"
        time.sleep(0.01)
    queued_ours = [r for r in ours.parts() if r.status is Status.QUEUED]
    assert theirs.cancel() >= 4 and ours.cancel() == len([r for r in ours.parts() if r.error and "ancelled" in r.error])
    for batch in (theirs, ours):
        cancelled = [r for r in batch.parts() if r.status is Status.ERROR]
        assert cancelled and all(r.error.startswith("Cancelled, not sent") for r in cancelled)
        assert batch.job_state is JobState.CANCELLED
    for i in range(6):  # the user's objects are never touched
        assert s3.head_object(Bucket="jobs-user", Key=f"in/{i}.csv")["ContentLength"] > 0
    for row in queued_ours:  # ours, never sent: removed
        if client.journal.get(row.inference_id).status is Status.ERROR:
            bucket, key = row.input_location[len("s3://"):].split("/", 1)
            with pytest.raises(ClientError):
                s3.head_object(Bucket=bucket, Key=key)
            assert client.journal.get(row.inference_id).input_location is None
    ours.wait(timeout=30)  # what was on the endpoint ran on
    assert ours.status_counts().get("COMPLETED", 0) >= 1


def test_callbacks_and_futures(stack, client, slow_endpoint):
    batch = client.submit_many(slow_endpoint, payloads(3, "cb"), max_pending=1, background=True)
    called, threads = [], []
    done = threading.Event()

    def on_done(handle):
        called.append(handle)
        threads.append(threading.current_thread().name)
        done.set()

    batch.add_done_callback(on_done)
    future = batch.future()
    assert done.wait(60)
    assert future.result(timeout=30)[0].tolist() == ["cb"] * 3
    time.sleep(1)
    assert called == [batch]  # once
    late = []
    batch.add_done_callback(late.append)  # already done: at once, in this thread
    assert late == [batch]

    inv = batch[0]
    assert asyncio.run(_await(inv.future()))[0].tolist() == ["cb"]


async def _await(future):
    return await asyncio.wrap_future(future)


def test_attach_follows_an_invocation_sent_elsewhere(stack, client, slow_endpoint):
    s3 = stack.boto3_client("s3")
    runtime = stack.boto3_client("sagemaker-runtime")
    bucket = stack.input_bucket if hasattr(stack, "input_bucket") else client.input_prefix().bucket
    s3.put_object(Bucket=bucket, Key="elsewhere/in.csv", Body=b"x,1\n")
    with pytest.raises(sma.NotTracked, match="client.attach"):
        client.invocation("cli-made-id-1")
    answer = runtime.invoke_endpoint_async(EndpointName=slow_endpoint, InputLocation=f"s3://{bucket}/elsewhere/in.csv",
                                           ContentType="text/csv", InferenceId="cli-made-id-1")
    with pytest.raises(sma.ValidationError, match="S3 URI"):
        client.attach(slow_endpoint, "cli-made-id-1", "https://example.com/out")
    assert client.journal.get("cli-made-id-1") is None
    inv = client.attach(slow_endpoint, "cli-made-id-1", answer["OutputLocation"], answer.get("FailureLocation"),
                        label="from-cli")
    assert inv.wait(timeout=30).result()[0].tolist() == ["x"]
    assert client.attach(slow_endpoint, "cli-made-id-1", answer["OutputLocation"]) == inv  # again: the same
    with pytest.raises(sma.ValidationError, match="already tracked for endpoint"):
        client.attach("another-endpoint", "cli-made-id-1", answer["OutputLocation"])
    inv.forget()
    assert s3.head_object(Bucket=bucket, Key="elsewhere/in.csv")["ContentLength"] == 4  # the user's input stays


def test_bad_job_options_are_one_line_and_send_nothing(stack, client, slow_endpoint):
    before = len(stack.records(slow_endpoint))
    for value, match in ((0, "max_pending"), (-3, "max_pending"), (2.5, "whole number"), ("lots", "auto")):
        with pytest.raises(sma.ValidationError, match=match):
            client.submit_many(slow_endpoint, ["a"], max_pending=value)
    for value in (-1, 11, 10**9):
        with pytest.raises(sma.ValidationError, match="retries"):
            client.submit_many(slow_endpoint, ["a"], retries=value)
    with pytest.raises(sma.ValidationError, match="inline"):
        client.submit_many(slow_endpoint, ["a"], inline=True, max_pending=1)
    assert client.records() == [] and len(stack.records(slow_endpoint)) == before


def test_resume_refuses_when_queued_inputs_were_removed(stack, client, slow_endpoint):
    batch = client.submit_many(slow_endpoint, payloads(6, "gone"), max_pending=1)
    batch.pause()
    queued = [r for r in batch.parts() if r.status is Status.QUEUED]
    s3 = stack.boto3_client("s3")
    bucket, key = queued[-1].input_location[len("s3://"):].split("/", 1)
    s3.delete_object(Bucket=bucket, Key=key)
    sent = {r["inference_id"] for r in stack.records(slow_endpoint)}
    with pytest.raises(sma.ValidationError, match="gone from S3"):
        batch.resume()
    assert batch.job_state is JobState.PAUSED
    time.sleep(SLOW_S * 3)
    assert {r["inference_id"] for r in stack.records(slow_endpoint)} - sent <= set()  # nothing more sent
    assert batch.cancel() == len(queued)
