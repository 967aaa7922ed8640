"""Thread and interrupt discipline, with real interrupts: Ctrl-C stops a batch (what has not started
is never sent), delivered as a real SIGINT or as ``_thread.interrupt_main()`` (how ipykernel
interrupts on Windows); a request that crashes leaves no row SUBMITTING; a status listener may call
back into the tracker without a deadlock."""

from __future__ import annotations

import _thread
import os
import signal
import threading
import time

import boto3
import pytest

import sm_async_nb as sma
from sm_async_nb.aws.s3uri import S3Uri
from sm_async_nb.records import Status
from sm_async_nb.submission.sender import NOT_SENT_INTERRUPTED

# How Ctrl-C reaches the main thread: a real SIGINT wakes a blocked wait at once; interrupt_main()
# only sets the flag Python checks when the thread next runs code (it does not wake a blocked wait).
DELIVERIES = {"sigint": lambda: os.kill(os.getpid(), signal.SIGINT), "interrupt_main": _thread.interrupt_main}


class Sends(list):
    """Send times of InvokeEndpointAsync; ``interrupt_at(n, how)`` makes the n-th send raise Ctrl-C in the
    main thread (from the worker), whatever the machine's load; ``fired_at`` is when."""

    interrupt_on: int | None = None
    fired_at: float | None = None
    deliver = staticmethod(DELIVERIES["sigint"])

    def interrupt_at(self, n: int, how: str = "sigint") -> None:
        self.interrupt_on, self.deliver = n, DELIVERIES[how]


@pytest.fixture
def slow_invokes(client):
    """Each InvokeEndpointAsync takes 40 ms on the wire; returns the send times."""
    sent = Sends()
    lock = threading.Lock()

    def before_send(**_):
        with lock:
            sent.append(time.monotonic())
            if sent.interrupt_on == len(sent):
                sent.fired_at = time.monotonic()
                sent.deliver()  # Python raises KeyboardInterrupt in the main thread
        time.sleep(0.04)

    client.aws.runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointAsync", before_send)
    return sent


@pytest.mark.parametrize("how", DELIVERIES)
def test_ctrl_c_during_a_batch_sends_nothing_that_had_not_started(client, slow_invokes, how):
    payloads = [f"{i},1,2,3\n" for i in range(400)]
    slow_invokes.interrupt_at(20, how)
    with pytest.raises(sma.SubmissionInterrupted) as info:
        client.submit_many("ep", payloads, label="stopped")
    raised_at = time.monotonic()
    exc = info.value
    batch = exc.batch
    assert isinstance(batch, sma.InvocationBatch) and batch.label == "stopped" and len(batch) == 400
    assert isinstance(exc, sma.SubmissionError)
    counts = batch.status_counts()
    assert counts.get("SUBMITTING", 0) == 0  # every row journaled: sent, or ERROR "not sent"
    assert exc.sent == counts["PENDING"] == len(slow_invokes)
    assert exc.not_sent == counts["ERROR"] == 400 - exc.sent and exc.not_sent > 300
    # Only requests already in flight (at most max_workers=4) went out after a real signal; a simulated
    # one is raised when the waiting thread next wakes (the next request finishing), by which time each
    # worker may have started one more.
    late = sum(1 for t in slow_invokes if t > slow_invokes.fired_at)
    assert late <= client.max_workers * (1 if how == "sigint" else 2)
    time.sleep(0.3)  # an absence: watched for a while of real time (a send still queued would start in it)
    assert all(t <= raised_at for t in slow_invokes), "nothing may be sent after the exception"
    errors = [p for p in batch.parts() if p.status is Status.ERROR]
    assert {p.error for p in errors} == {NOT_SENT_INTERRUPTED}
    assert "resubmit()" in str(exc) and str(exc.sent) in str(exc)
    # The rest goes with resubmit(), with the same ids (they never reached SageMaker).
    again = batch.resubmit()
    assert {i.inference_id for i in again} == {p.inference_id for p in errors}
    assert batch.status_counts() == {"PENDING": 400}


@pytest.mark.parametrize("how", DELIVERIES)
def test_ctrl_c_during_a_single_submit_lets_the_request_finish(client, slow_invokes, how):
    slow_invokes.interrupt_at(1, how)
    with pytest.raises(sma.SubmissionInterrupted) as info:
        client.submit("ep", "1,2,3,4\n", inference_id="one-in-flight")
    assert slow_invokes.fired_at is not None
    assert info.value.sent == 1 and info.value.inference_id == "one-in-flight"
    assert client.invocation("one-in-flight").status is Status.PENDING  # journaled, and tracked


def test_ctrl_c_landing_in_the_hand_off_to_the_pool_never_calls_a_sent_request_not_sent(client, monkeypatch):
    # The Ctrl-C lands right after the request went to the pool, once its invoke is under way: it must be
    # waited for and journaled PENDING, never marked "not sent" (resubmit() would then send it twice).
    invoking = threading.Event()
    client.aws.runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointAsync",
                                            lambda **_: invoking.set())
    submit = client.pool.submit

    def submit_then_ctrl_c(*args, **kwargs):
        future = submit(*args, **kwargs)
        if threading.current_thread() is threading.main_thread():
            assert invoking.wait(10)
            raise KeyboardInterrupt
        return future

    monkeypatch.setattr(client.pool, "submit", submit_then_ctrl_c)
    with pytest.raises(sma.SubmissionInterrupted) as info:
        client.submit("ep", "1,2,3,4\n", inference_id="handed-off")
    assert (info.value.sent, info.value.not_sent) == (1, 0)
    row = client.journal.get("handed-off")
    assert row.status is Status.PENDING and row.error is None


class Unplugged(BaseException):
    """Not an Exception: what no ``except Exception`` in a worker catches."""


def test_a_crash_in_a_send_leaves_no_row_submitting_and_stops_the_run(client):
    calls: list[int] = []
    lock = threading.Lock()

    def crash(**_):
        with lock:
            calls.append(1)
            if len(calls) == 3:
                raise Unplugged("the machine is going down")
        time.sleep(0.02)

    client.aws.runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointAsync", crash)
    with pytest.raises(Unplugged):
        client.submit_many("ep", [f"{i},1\n" for i in range(40)], inference_id="crash")
    rows = client.records()
    assert len(rows) == 40 and [r for r in rows if r.status is Status.SUBMITTING] == []
    [lost] = [r for r in rows if "answer was lost (Unplugged)" in (r.error or "")]
    assert lost.status is Status.ERROR and lost.input_location  # its input stays: resubmit() may reuse it
    stopped = [r for r in rows if "the submission stopped (Unplugged in another request)" in (r.error or "")]
    assert len(calls) <= 3 + client.max_workers and len(stopped) >= 40 - len(calls)
    client.aws.runtime.meta.events.unregister("before-send.sagemaker-runtime.InvokeEndpointAsync", crash)
    batch = client.batch("batch-crash")
    batch.resubmit()
    assert batch.status_counts() == {"PENDING": 40}


def test_a_listener_may_refresh_and_load_results_from_the_poller_thread(client, stage_row):
    pending = client.submit("ep", "1,2,3,4\n", accept="text/csv")
    # moto's stand-in runtime writes an output at once: point this one where nothing will appear
    stage_row(client.journal, pending.inference_id, output_location="s3://input-bucket/never/x.out",
                          failure_location="s3://input-bucket/never/x-error.out")
    done = client.submit("ep", "5,6,7,8\n", accept="text/csv")
    out = S3Uri.parse(done.output_location)
    boto3.client("s3").put_object(Bucket=out.bucket, Key=out.key, Body=b"7\n", ContentType="text/csv")
    heard: list[object] = []
    entered, finished = threading.Event(), threading.Event()

    def listener(changes):
        if entered.is_set() or threading.current_thread().name != "sm-async-nb-tracker":
            return
        entered.set()
        heard.append(client.tracker.refresh())      # re-entering the tracker: the old code deadlocked here
        heard.append(done.result().iloc[0, 0])
        try:
            pending.result()
        except sma.ResultNotReady as exc:
            heard.append(type(exc).__name__)
        finished.set()

    client.tracker.subscribe(listener)
    client.tracker.start()
    assert finished.wait(15), "the poller deadlocked in its own listener"
    assert heard[1:] == [7, "ResultNotReady"]
    client.tracker.stop(timeout=5)
    assert not client.tracker.running


def test_interrupt_main_is_always_caught_by_the_runner(client):
    """CPython 3.11 may raise a simulated interrupt at a loop's back edge with a location outside the
    try that the loop opens; the runner's wait loop is a call inside its try, so it never escapes as a
    bare KeyboardInterrupt. Many short runs, because the window is a few instructions wide."""
    def interrupt(**_):
        _thread.interrupt_main()
        time.sleep(0.03)

    client.aws.runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointAsync", interrupt)
    for n in range(25):
        with pytest.raises(sma.SubmissionInterrupted):
            client.submit("ep", "1,2,3,4\n", inference_id=f"again-{n}")
