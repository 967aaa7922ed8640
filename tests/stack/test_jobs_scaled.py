"""Jobs against an emulated clock (``time_scale``): TTLs pass faster than they read, so a queue that
outlives its TTL is a matter of seconds. ``max_pending="auto"`` keeps it from expiring; ``retries``
sends what expired again with the same input; model errors are never retried."""

from __future__ import annotations

import time

import pytest

from sm_async_nb.records import Status

SCALE = 30.0          # 60 emulated seconds (the shortest TTL the API allows) pass in 2 real seconds
TTL = 60
MODEL_S = 0.1


def steady(body: bytes, content_type: str):
    time.sleep(MODEL_S)
    if body.startswith(b"boom"):
        raise ValueError("the model refuses boom")
    return body, "text/csv"


@pytest.fixture(scope="module")
def scaled():
    from sm_async_nb.local import LocalStack

    with LocalStack(time_scale=SCALE, concurrency=1) as stack:
        stack.add_endpoint("steady", model=steady, concurrency=2)
        yield stack


@pytest.fixture
def client(scaled, tmp_path):
    with scaled.client(journal_path=tmp_path / "journal.sqlite3", max_workers=8) as c:
        assert c.ctx.time_scale == SCALE  # the stack hands its emulated clock to its clients
        yield c


def test_auto_loses_nothing_where_submitting_everything_expires_the_tail(scaled, client):
    # 60 requests x 0.1 s / 2 at once = 3 s of work; the TTL is 2 s of real time.
    rows = [f"r,{i}\n" for i in range(60)]
    everything = client.submit_many("steady", rows, request_ttl_seconds=TTL, label="all-at-once")
    everything.wait(timeout=120)
    assert everything.status_counts().get("EXPIRED", 0) > 0
    assert scaled.wait_until_idle(30)

    auto = client.submit_many("steady", rows, request_ttl_seconds=TTL, max_pending="auto", label="auto")
    auto.wait(timeout=120)
    assert auto.status_counts() == {"COMPLETED": 60}
    decision = client.jobs.decision(auto.batch_id)
    assert decision is not None and decision.window >= 2  # capacity 2 at least, sized from the endpoint


def test_retries_resend_what_expired_with_the_same_input(scaled, client):
    # A first round that is sure to expire some: the endpoint is busy with 40 requests (2 s of work) first,
    # and the 2 s TTL runs out behind them. Later rounds find it free (31 requests: 1.55 s).
    client.submit_many("steady", [f"busy,{i}\n" for i in range(40)], request_ttl_seconds=TTL * 10)
    rows = [f"x,{i}\n" for i in range(30)]
    batch = client.submit_many("steady", rows + ["boom\n"], request_ttl_seconds=TTL, retries=3, label="retried")
    batch.wait(timeout=180)
    rows_all = client.journal.batch_rows(batch.batch_id)
    retried = [r for r in rows_all if r.resubmitted_as is not None]
    assert retried, "some parts expired and were sent again"
    for old in retried:
        new = client.journal.get(old.resubmitted_as)
        assert old.status is Status.EXPIRED and new.input_location == old.input_location  # same input object
        assert new.batch_index == old.batch_index and new.inference_id != old.inference_id
    parts = batch.parts()
    boom = parts[-1]
    assert boom.status is Status.FAILED and "ModelError" in (boom.failure_reason or "")
    attempts = [r for r in rows_all if r.batch_index == boom.batch_index]
    assert attempts[-1] == boom and boom.resubmitted_as is None  # a model error: never retried (done with retries left)
    assert all(r.status is Status.EXPIRED for r in attempts[:-1]) and len(attempts) <= 4
    assert all(p.status is Status.COMPLETED for p in parts[:-1])
    frame = batch.result(errors="skip")  # the last attempt of each part
    assert frame[1].tolist() == list(range(30))
