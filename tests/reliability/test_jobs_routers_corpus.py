"""A hostile user's corpus for jobs (SPEC §16, issue 24) and inference routers (SPEC §20, issue 27) on the
shared local stack: odd values for the job options, routing targets and ``attach`` (one line from an
sm_async_nb exception, nothing uploaded or journaled), numpy numbers where seconds are asked, pause /
resume / cancel in every order, done callbacks that raise, re-enter or wait for another batch, results
as they come after a timeout, a client closed under a running job, a router deleted mid-job, S3 refusing
the clean-up of a cancel, and every external string the panel's router strip shows."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sm_async_nb as sma
from sm_async_nb.endpoints.router_status import DestinationStatus, RouterStatus, RoutingTargetStatus
from sm_async_nb.endpoints.status import EndpointStatus
from sm_async_nb.notebook.panel.strip import router_html, unavailable_html
from sm_async_nb.records import JobState, Status

V = sma.ValidationError
OK_ROW = "5.1,3.5,1.4,0.2"
ACCOUNT = "123456789012"
SLOW, ROUTER, TARGET = "corpus4-slow", "corpus4-router", "t"
R = sma.RoutingTarget
SURROGATE = "x\ud800y"


def slow(body: bytes, content_type: str):
    import time

    time.sleep(0.1)
    return body, "text/csv"


def arn(stack, name: str) -> str:
    return f"arn:aws:sagemaker:{stack.region}:{ACCOUNT}:endpoint/{name}"


def make_router(stack, name: str, destinations: list[str]) -> None:
    import time

    sm = stack.boto3_client("sagemaker")
    sm.create_inference_router(InferenceRouterName=name, RoutingTargets=[{
        "Name": TARGET, "Destinations": [{"ResourceArn": arn(stack, d)} for d in destinations],
        "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": f"s3://{stack.input_bucket}/corpus4/{name}/",
                                                  "S3FailurePath": f"s3://{stack.input_bucket}/corpus4-f/{name}/"},
                                 "ClientConfig": {"MaxTimeInBacklogSeconds": 60}}}])
    deadline = time.monotonic() + 20
    while sm.describe_inference_router(InferenceRouterName=name)["Status"] != "InService":
        assert time.monotonic() < deadline, "router never InService"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def routed(stack):
    """A slow endpoint (concurrency 1: a window is observable) and a router over it and the stack's own."""
    stack.add_endpoint(SLOW, model=slow, concurrency=1, exist_ok=True)
    make_router(stack, ROUTER, [stack.endpoint_name, SLOW])
    return R(ROUTER, TARGET)


@pytest.fixture
def client(stack, tmp_path):
    with stack.client(journal_path=tmp_path / "journal.sqlite3", max_workers=4) as c:
        yield c


def payloads(n: int, tag: str) -> list[str]:
    return [f"{tag},{i}\n" for i in range(n)]


def attach_twice(c: Any, second_endpoint: str, second_output: str) -> Any:
    out = f"s3://{c.stack.input_bucket}/corpus4-att/twice.out"
    c.client.attach(c.ep, "corpus4-twice", out)
    return c.client.attach(second_endpoint, "corpus4-twice", second_output or out)


def labelled_single(c: Any, verb: str) -> Any:
    c.client.submit(c.ep, OK_ROW, label="corpus4-single")
    return c.shell().run_line_magic("sm_async", f"{verb} corpus4-single")


FRAME = pd.DataFrame({"a": [1, 2]})
T = R(ROUTER, TARGET)

CASES: list[tuple[str, Callable[[Any], Any], type, str, str]] = [
    # the job options, of every wrong kind
    ("max-pending-true", lambda c: c.client.submit_many(c.ep, [OK_ROW], max_pending=True), V,
     "max_pending must be an integer from 1", "nothing"),
    ("max-pending-numpy-bool", lambda c: c.client.submit_many(c.ep, [OK_ROW], max_pending=np.bool_(True)), V,
     "max_pending must be an integer", "nothing"),
    ("max-pending-numpy-float", lambda c: c.client.submit_many(c.ep, [OK_ROW], max_pending=np.float64(2)), V,
     "max_pending must be a whole number", "nothing"),
    ("max-pending-other-word", lambda c: c.client.submit_many(c.ep, [OK_ROW], max_pending="AUTOMATIC"), V,
     "max_pending must be a positive integer, \"auto\" or None", "nothing"),
    ("retries-true", lambda c: c.client.submit_many(c.ep, [OK_ROW], retries=True), V,
     "retries must be an integer from 0 to 10, not True", "nothing"),
    ("retries-numpy-huge", lambda c: c.client.submit_many(c.ep, [OK_ROW], retries=np.int64(11)), V,
     "retries must be an integer from 0 to 10", "nothing"),
    ("background-one", lambda c: c.client.submit_many(c.ep, [OK_ROW], background=1), V,
     "background must be True or False, not 1", "nothing"),
    ("background-word", lambda c: c.client.submit_dataframe(c.ep, FRAME, 1, background="yes"), V,
     "background must be True or False", "nothing"),
    ("max-pending-on-submit", lambda c: c.client.submit(c.ep, OK_ROW, max_pending=2), V,
     "max_pending does not apply to submit", "nothing"),
    ("pause-batch-sent-at-once", lambda c: c.client.submit_many(c.ep, [OK_ROW]).pause(), V,
     "was sent at once .* nothing held back", "any"),
    ("magic-pause-single-invocation", lambda c: labelled_single(c, "pause"), V,
     "'corpus4-single' names one invocation, not a batch", "any"),
    ("magic-cancel-single-invocation", lambda c: labelled_single(c, "cancel"), V, "names one invocation", "any"),
    ("magic-resume-unknown", lambda c: c.shell().run_line_magic("sm_async", "resume corpus4-nothing"), V,
     "Nothing tracked matches 'corpus4-nothing'", "nothing"),
    ("as-completed-negative-timeout", lambda c: list(c.client.submit_many(c.ep, [OK_ROW], max_pending=1)
                                                     .as_completed(timeout=-1)), V, "timeout must be a number", "any"),
    ("iter-results-bad-errors", lambda c: list(c.client.submit_many(c.ep, [OK_ROW], max_pending=1)
                                               .iter_results(errors="ignore")), V,
     "errors must be 'raise' or 'skip'", "any"),
    # routing targets: names of every wrong kind, checked before anything is uploaded
    ("router-empty", lambda c: c.client.submit(R("", TARGET), OK_ROW), V, "InferenceRouterName '' is invalid",
     "nothing"),
    ("target-empty", lambda c: c.client.submit(R(ROUTER, ""), OK_ROW), V, "RoutingTargetName '' is invalid",
     "nothing"),
    ("router-int", lambda c: c.client.submit_many(R(5, TARGET), [OK_ROW]), V,
     "InferenceRouterName 5 is invalid: it must be a string", "nothing"),
    ("target-none", lambda c: c.client.submit(R(ROUTER, None), OK_ROW), V, "RoutingTargetName None is invalid",
     "nothing"),
    ("router-bytes", lambda c: c.client.submit(R(ROUTER.encode(), TARGET), OK_ROW), V, "must be a string",
     "nothing"),
    ("router-with-slash", lambda c: c.client.submit(R("a/b", TARGET), OK_ROW), V,
     "InferenceRouterName 'a/b' is invalid", "nothing"),
    ("target-with-slash", lambda c: c.client.submit_dataframe(R(ROUTER, "a/b"), FRAME, 1), V,
     "RoutingTargetName 'a/b' is invalid", "nothing"),
    ("router-slash-as-endpoint", lambda c: c.client.submit(f"{ROUTER}/{TARGET}", OK_ROW), V,
     "an endpoint name has no '/'.*sma.RoutingTarget", "nothing"),
    ("router-unknown", lambda c: c.client.submit_many(R("corpus4-nope", TARGET), [OK_ROW], max_pending=1), V,
     "Could not find inference router .*nothing was uploaded or journaled", "nothing"),
    ("target-unknown", lambda c: c.client.submit(R(ROUTER, "nope"), OK_ROW), V,
     "Routing target 'nope' not found in inference router .*its routing targets: t", "nothing"),
    ("router-filename-65", lambda c: c.client.submit(T, OK_ROW, filename="f" * 65), V,
     "Filename .* 1..64 characters", "nothing"),
    ("router-inline", lambda c: c.client.submit(T, OK_ROW, inline=True), V,
     "inline=True cannot be used with inference router", "nothing"),
    ("router-inline-batch", lambda c: c.client.submit_many(T, [OK_ROW], inline=True), V,
     "inline=True cannot be used", "nothing"),
    ("router-json-format-bad", lambda c: c.client.submit_dataframe(T, FRAME, 1, json_format="nope"), V,
     "json_format must be one of", "nothing"),
    ("endpoint-status-of-target", lambda c: c.client.endpoint_status(T), V,
     "endpoint_status takes an endpoint name, not a routing target .*router_status", "nothing"),
    ("endpoint-status-slash", lambda c: c.client.endpoint_status(f"{ROUTER}/{TARGET}"), V,
     "EndpointName .* is invalid", "nothing"),
    ("router-status-int", lambda c: c.client.router_status(5), V, "InferenceRouterName 5 is invalid", "nothing"),
    ("router-status-missing", lambda c: c.client.router_status("corpus4-nope"), sma.AwsError,
     "Could not find inference router", "nothing"),
    ("magic-router-without-target", lambda c: c.shell().run_cell_magic("invoke_async", "corpus4-nope", OK_ROW), V,
     "Endpoint 'corpus4-nope' does not exist", "nothing"),
    ("magic-routing-target-empty", lambda c: c.shell().run_cell_magic("invoke_async", f"{ROUTER} --routing-target ''",
                                                                      OK_ROW), V, "RoutingTargetName '' is invalid",
     "nothing"),
    # attach: what was answered elsewhere, of every wrong kind
    ("attach-failure-location-only", lambda c: c.client.attach(c.ep, "corpus4-a1", None,
                                                               f"s3://{c.stack.input_bucket}/f/corpus4-a1.out"), V,
     "output_location must be an S3 URI", "nothing"),
    ("attach-http-location", lambda c: c.client.attach(c.ep, "corpus4-a2", "https://example.com/out"), V,
     "output_location must be an S3 URI", "nothing"),
    ("attach-folder", lambda c: c.client.attach(c.ep, "corpus4-a3", f"s3://{c.stack.input_bucket}/out/"), V,
     "names a folder", "nothing"),
    ("attach-bad-bucket", lambda c: c.client.attach(c.ep, "corpus4-a4", "s3://Bad_Bucket/x.out"), V,
     "does not name a valid bucket", "nothing"),
    ("attach-id-int", lambda c: c.client.attach(c.ep, 5, f"s3://{c.stack.input_bucket}/x.out"), V,
     "InferenceId 5 is invalid", "nothing"),
    ("attach-label-int", lambda c: c.client.attach(c.ep, "corpus4-a5", f"s3://{c.stack.input_bucket}/a5.out",
                                                   label=3), V, "label must be a string", "nothing"),
    ("attach-label-surrogate", lambda c: c.client.attach(c.ep, "corpus4-a6", f"s3://{c.stack.input_bucket}/a6.out",
                                                         label=SURROGATE), V, "label .* lone surrogate", "nothing"),
    ("attach-router-slash", lambda c: c.client.attach(R("a/b", TARGET), "corpus4-a7",
                                                      f"s3://{c.stack.input_bucket}/a7.out"), V,
     "InferenceRouterName 'a/b' is invalid", "nothing"),
    ("attach-same-id-other-endpoint", lambda c: attach_twice(c, SLOW, ""), V,
     "already tracked for endpoint .* nothing was attached", "any"),
    ("attach-same-id-other-output", lambda c: attach_twice(c, c.ep, f"s3://{c.stack.input_bucket}/other.out"), V,
     "already tracked with output .* nothing was attached", "any"),
    ("attach-same-id-as-target", lambda c: attach_twice(c, T, ""), V, "already tracked for endpoint", "any"),
]


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id, action, error, pattern, leaves", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, action, error, pattern, leaves, stack, routed, input_keys, tmp_path, corpus_context):
    with stack.client(journal_path=tmp_path / "journal.sqlite3") as client:
        ctx = corpus_context(client, {})
        keeper = client.submit(stack.endpoint_name, OK_ROW, label="already-there")
        rows_before = {r.inference_id for r in client.records(include_other_origins=True)}
        keys_before = input_keys()
        received = len(stack.records())
        ctx.refused(action, error, pattern)
        rows_after = client.records(include_other_origins=True)
        assert rows_before <= {r.inference_id for r in rows_after}, "a journal row was lost"
        assert client.journal.get(keeper.inference_id).input_location == keeper.input_location
        if leaves == "nothing":
            assert [r for r in rows_after if r.inference_id not in rows_before] == []
            assert input_keys() == keys_before and len(stack.records()) == received


# numpy numbers are numbers wherever seconds are asked (as they are integers for the integer options)
@pytest.mark.parametrize("value", [np.int64(30), np.float32(30.0), np.uint8(30), 30])
def test_numpy_seconds_are_seconds(stack, routed, client, value):
    batch = client.submit_many(stack.endpoint_name, [OK_ROW] * 2, max_pending=np.int64(1), retries=np.int8(1))
    assert batch.wait(timeout=value).status_counts() == {"COMPLETED": 2}
    assert len(list(batch.as_completed(timeout=value))) == 2
    assert len(list(batch.iter_results(timeout=value))) == 2
    assert batch[0].wait(timeout=value).status is Status.COMPLETED
    assert client.router_status(ROUTER, max_age=value - value).status == "InService"
    assert client.endpoint_status(stack.endpoint_name, max_age=value).name == stack.endpoint_name
    auto = client.submit_many(stack.endpoint_name, [OK_ROW] * 2, max_pending=" AUTO ")
    assert auto.wait(timeout=value).status_counts() == {"COMPLETED": 2}


def test_pause_resume_cancel_in_every_order(stack, routed, client):
    batch = client.submit_many(SLOW, payloads(10, "p"), max_pending=1, label="orders")
    assert batch.pause() is True and batch.pause() is False  # twice: the second changes nothing
    assert batch.job_state is JobState.PAUSED
    assert batch.resume() is True and batch.resume() is False
    cancelled = batch.cancel()
    assert cancelled >= 1 and batch.cancel() == 0
    assert batch.resume() is False and batch.pause() is False  # a cancelled job stays cancelled
    assert batch.job_state is JobState.CANCELLED
    counts = batch.wait(timeout=30).status_counts()
    assert counts.get("ERROR") == cancelled and sum(counts.values()) == 10
    assert len(list(batch.as_completed(timeout=30))) == 10  # each part once, the cancelled ones too
    with pytest.raises(sma.SubmissionError, match="Cancelled, not sent"):
        batch.future().result(timeout=30)
    done = client.submit_many(SLOW, payloads(2, "d"), max_pending=1)
    done.wait(timeout=30)
    assert done.resume() is False and done.cancel() == 0


def test_results_as_they_come_after_a_timeout_and_through_asyncio(stack, routed, client):
    batch = client.submit_many(SLOW, payloads(6, "z"), max_pending=1)
    first: list[str] = []
    with pytest.raises(TimeoutError, match="call as_completed\\(\\) again"):
        for inv in batch.as_completed(timeout=0.05):
            first.append(inv.inference_id)
    again = [inv.inference_id for inv in batch.as_completed(timeout=60)]
    assert sorted(again) == sorted(batch.inference_ids) and len(set(again)) == 6  # each once, again from the start
    assert [f.shape for f in batch.iter_results(errors="skip", timeout=30)] == [(1, 2)] * 6

    async def both():
        return await asyncio.gather(asyncio.wrap_future(batch.future()), asyncio.wrap_future(batch[0].future()))

    whole, one = asyncio.run(both())
    assert whole[0].tolist() == ["z"] * 6 and one[0].tolist() == ["z"]


def test_callbacks_that_raise_re_enter_or_wait_for_another_batch(stack, routed, client, caplog):
    first = client.submit_many(SLOW, payloads(2, "x"), max_pending=1)
    second = client.submit_many(SLOW, payloads(8, "y"), max_pending=1)
    seen: list[Any] = []
    finished = threading.Event()

    def raises(batch):
        raise RuntimeError("the user's callback fails")

    def re_enters(batch):  # the batch's own controls from inside its callback: no deadlock, no change
        seen.append(("re-enter", batch.pause(), batch.resume(), batch.cancel(), batch.done))

    def waits_for_the_other(batch):  # blocking here must not stop the polling that finishes ``second``
        try:
            seen.append(("other", second.wait(timeout=20).status_counts()))
        except Exception as exc:
            seen.append(("other", repr(exc)))
        finished.set()

    with caplog.at_level(logging.ERROR, logger="sm_async_nb"):
        for fn in (raises, re_enters, waits_for_the_other):
            first.add_done_callback(fn)
        assert second.wait(timeout=60).status_counts() == {"COMPLETED": 8}
        assert finished.wait(30)
    assert ("re-enter", False, False, 0, True) in seen
    assert ("other", {"COMPLETED": 8}) in seen, seen
    assert any("callback failed" in r.getMessage() for r in caplog.records)


def test_a_closed_clients_job_waits_paused_for_resume(stack, routed, tmp_path):
    path = tmp_path / "journal.sqlite3"
    with stack.client(journal_path=path) as first:
        batch_id = first.submit_many(SLOW, payloads(12, "c"), max_pending=1, label="closed").batch_id
    with stack.client(journal_path=path) as second:
        batch = second.batch(batch_id)
        assert batch.job_state is JobState.PAUSED  # nothing drives it any more: not RUNNING
        assert batch.status_counts().get("QUEUED", 0) >= 1
        with pytest.raises(sma.SubmissionError, match="paused with .* queued request"):
            batch.wait(timeout=30)
        assert batch.resume() is True
        assert batch.wait(timeout=60).status_counts() == {"COMPLETED": 12}


def test_a_router_deleted_mid_job_pauses_it_and_it_finishes_once_the_router_is_back(stack, routed, client):
    """A router that is gone is a problem every request would hit: the job pauses (its queued parts stay
    QUEUED, the one that hit it is ERROR with AWS's text, its input kept); once the router is back,
    resume() and resubmit() finish the job in order."""
    make_router(stack, "corpus4-gone", [SLOW])
    batch = client.submit_many(R("corpus4-gone", TARGET), payloads(6, "g"), max_pending=1, label="gone")
    stack.boto3_client("sagemaker").delete_inference_router(InferenceRouterName="corpus4-gone")
    deadline = time.monotonic() + 60
    while batch.job_state is not JobState.PAUSED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert batch.job_state is JobState.PAUSED
    with pytest.raises(sma.SubmissionError, match="paused with .* queued"):
        batch.wait(timeout=60)
    failed = [r for r in batch.parts() if r.status is Status.ERROR]
    assert failed and all("corpus4-gone" in r.error and "not found" in r.error for r in failed)
    assert all(r.input_location for r in failed)  # kept for a resubmission
    assert batch.status_counts().get("QUEUED", 0) >= 1
    assert "corpus4-gone" in client.jobs.problem and "resume()" in client.jobs.problem
    make_router(stack, "corpus4-gone", [SLOW])
    assert batch.resume() is True
    again = client.resubmit([r.inference_id for r in failed])
    assert all(inv.wait(timeout=60).status is Status.COMPLETED for inv in again)
    batch.wait(timeout=60)
    assert batch.result()[0].tolist() == ["g"] * 6


def test_a_cancel_whose_cleanup_s3_refuses_says_so_in_one_line(stack, routed, client, input_keys, caplog,
                                                                 corpus_context):
    batch = client.submit_many(SLOW, payloads(8, "k"), max_pending=1)
    corpus_context(client, {}).deny("DeleteObjects", "InternalError", 500, "We encountered an internal error.")
    with caplog.at_level(logging.WARNING, logger="sm_async_nb"):
        cancelled = batch.cancel()
    assert cancelled >= 1
    (warning,) = [r for r in caplog.records if "could not remove" in r.getMessage()]
    assert warning.exc_info is None and "\n" not in warning.getMessage()  # one line, no traceback
    left = {r.input_location.split("/", 3)[3] for r in batch.parts() if r.status is Status.ERROR}
    assert len(left) == cancelled and left <= input_keys()  # still there, and the rows still point at them


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_the_router_strip_escapes_every_external_string():
    endpoint = EndpointStatus(name=HOSTILE, status=HOSTILE, current_instances=0, desired_instances=1, backlog=3,
                              warnings=[HOSTILE])
    target = RoutingTargetStatus(name=HOSTILE, destinations=(
        DestinationStatus(arn=HOSTILE, routing_status=HOSTILE),
        DestinationStatus(arn=HOSTILE, routing_status=HOSTILE, endpoint_name=HOSTILE, endpoint=endpoint)),
        is_async=True, output_path=HOSTILE, failure_path=HOSTILE)
    status = RouterStatus(name=HOSTILE, status=HOSTILE, arn=HOSTILE, status_reason=HOSTILE, targets=(target,),
                          warnings=[HOSTILE, HOSTILE])
    shown = [router_html(status, HOSTILE), router_html(status, "missing"),
             router_html(RouterStatus(name=HOSTILE, exists=False, warnings=[HOSTILE]), HOSTILE),
             unavailable_html(f"{HOSTILE}/{HOSTILE}", RuntimeError(HOSTILE))]
    for html in shown:
        assert "<script" not in html and "<img" not in html and 'alert("x")' not in html, html
        assert "&lt;script&gt;" in html
