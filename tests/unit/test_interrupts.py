"""Thread and interrupt discipline, with real signals: Ctrl-C stops a batch (what has not started
is never sent), and a status listener may call back into the tracker without a deadlock."""

from __future__ import annotations

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


class Sends(list):
    """Send times of InvokeEndpointAsync; ``interrupt_at(n)`` makes the n-th send raise Ctrl-C in the
    main thread (from the worker, as a real SIGINT), whatever the machine's load; ``fired_at`` is when."""

    interrupt_on: int | None = None
    fired_at: float | None = None

    def interrupt_at(self, n: int) -> None:
        self.interrupt_on = n


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
                os.kill(os.getpid(), signal.SIGINT)  # Python runs the handler on the main thread
        time.sleep(0.04)

    client.aws.runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointAsync", before_send)
    return sent


def test_ctrl_c_during_a_batch_sends_nothing_that_had_not_started(client, slow_invokes):
    payloads = [f"{i},1,2,3\n" for i in range(400)]
    slow_invokes.interrupt_at(20)
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
    # Only requests already in flight (at most max_workers=4) went out after the signal.
    assert sum(1 for t in slow_invokes if t > slow_invokes.fired_at) <= client.max_workers
    time.sleep(0.3)
    assert all(t <= raised_at for t in slow_invokes), "nothing may be sent after the exception"
    errors = [p for p in batch.parts() if p.status is Status.ERROR]
    assert {p.error for p in errors} == {NOT_SENT_INTERRUPTED}
    assert "resubmit()" in str(exc) and str(exc.sent) in str(exc)
    # The rest goes with resubmit(), with the same ids (they never reached SageMaker).
    again = batch.resubmit()
    assert {i.inference_id for i in again} == {p.inference_id for p in errors}
    assert batch.status_counts() == {"PENDING": 400}


def test_ctrl_c_during_a_single_submit_lets_the_request_finish(client, slow_invokes):
    slow_invokes.interrupt_at(1)
    with pytest.raises(sma.SubmissionInterrupted) as info:
        client.submit("ep", "1,2,3,4\n", inference_id="one-in-flight")
    assert slow_invokes.fired_at is not None
    assert info.value.sent == 1 and info.value.inference_id == "one-in-flight"
    assert client.invocation("one-in-flight").status is Status.PENDING  # journaled, and tracked


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
