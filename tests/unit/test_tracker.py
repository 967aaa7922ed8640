"""The tracker's polling cost model, 403 handling, expiry, timing and events (moto in-process)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from sm_async_nb.records import Finish, InvocationRecord, Status, SubmitStep, new_inference_id
from sm_async_nb.tracking.tracker import MIN_INTERVAL


@pytest.fixture
def s3(moto_aws):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="out")
    return s3


def pending(client, count, *, prefix="outputs/", failure_prefix="failures/", start=None, **extra):
    """Journal rows as the client writes them after a successful invoke (a minute ago by default:
    outputs written now are newer than the invoke, and no deadline has passed)."""
    start = time.time() - 60 if start is None else start
    rows = []
    for i in range(count):
        iid = new_inference_id(start + i * 0.001)
        rows.append(InvocationRecord(
            inference_id=iid, endpoint_name="ep", origin=client.origin, status=Status.PENDING,
            submit_step=SubmitStep.DONE, output_location=f"s3://out/{prefix}{iid}.out",
            failure_location=f"s3://out/{failure_prefix}{iid}-error.out", submitted_at=start,
            invoked_at=start, **extra))
    client.journal.add(rows)
    return rows


def complete(s3, rows, body=b"1"):
    for r in rows:
        s3.put_object(Bucket="out", Key=r.output_location.split("/", 3)[3], Body=body)


def test_thousand_pending_under_one_prefix_cost_at_most_three_requests(client, s3):
    # Older outputs from earlier runs sort before the pending ids (UUIDv7) and are skipped.
    complete(s3, pending(client, 1500, start=1_700_000_000.0))
    client.journal.finish([Finish(r.inference_id, Status.COMPLETED)
                           for r in client.journal.records(statuses=[Status.PENDING])])
    rows = pending(client, 1000)
    complete(s3, rows[:600])
    changes = client.tracker.refresh()
    assert client.tracker.stats.s3_requests <= 3
    assert len(changes) == 600 and all(c.new is Status.COMPLETED for c in changes)
    complete(s3, rows[600:])
    changes = client.tracker.refresh()
    assert len(changes) == 400 and client.tracker.stats.s3_requests <= 3
    assert client.journal.counts(client.origin)[Status.COMPLETED] == 2500


def test_listing_costs_two_requests_where_head_per_id_costs_two_per_id(client, s3):
    rows = pending(client, 50)
    complete(s3, rows[:10])
    assert len(client.tracker.refresh()) == 10
    assert client.tracker.stats.s3_requests == 2  # one listing of the output prefix, one of the failure prefix
    # The same refresh when listing is not allowed: the tracker falls back to HEAD per object, which
    # is what the SageMaker SDK does per id (HEAD output, then HEAD failure).
    client.tracker.prober._list_denied.add("out")
    complete(s3, rows[10:20])
    assert len(client.tracker.refresh()) == 10
    assert client.tracker.stats.s3_requests == 30 * 2 + 10  # 30 still pending: 2 HEADs each; 10 found: 1


def test_mixed_prefixes_cost_one_listing_each(client, s3):
    groups = [pending(client, 20, prefix=f"run{i}/", failure_prefix=f"fail{i}/", start=time.time() - 60 + i)
              for i in range(3)]
    for rows in groups:
        complete(s3, rows[:5])
    changes = client.tracker.refresh()
    assert len(changes) == 15
    assert client.tracker.stats.s3_requests == 6  # 3 output prefixes + 3 failure prefixes


def test_a_single_pending_id_uses_head(client, s3):
    [row] = pending(client, 1)
    client.tracker.refresh()
    assert client.tracker.stats.s3_requests == 2  # HEAD output (404), HEAD failure (404)
    complete(s3, [row])
    client.tracker.refresh()
    assert client.tracker.stats.s3_requests == 1
    assert client.journal.get(row.inference_id).status is Status.COMPLETED


def test_failure_objects_carry_their_reason_and_only_the_service_expiry_code_means_expired(client, s3):
    failed, expired, mentions, done = pending(client, 4)
    s3.put_object(Bucket="out", Key=failed.failure_location.split("/", 3)[3],
                  Body=b"ModelError: <img src=x onerror=alert(1)>")
    s3.put_object(Bucket="out", Key=expired.failure_location.split("/", 3)[3],
                  Body=b"RequestExpired: it stayed queued longer than RequestTTLSeconds (60)")
    s3.put_object(Bucket="out", Key=mentions.failure_location.split("/", 3)[3],
                  Body=b'ModelError: Received client error (400) from model with message "token expired".')
    complete(s3, [done])
    client.tracker.refresh()
    rows = client.journal.get_many([r.inference_id for r in (failed, expired, mentions, done)])
    assert rows[failed.inference_id].status is Status.FAILED
    assert rows[failed.inference_id].failure_reason == "ModelError: <img src=x onerror=alert(1)>"
    assert rows[expired.inference_id].status is Status.EXPIRED
    assert rows[mentions.inference_id].status is Status.FAILED  # the model's words are not the service's signal
    assert rows[done.inference_id].status is Status.COMPLETED


def _deny(operation_name):
    """Answer like S3 does without the permission (a real 403 response shape)."""
    def handler(model, **_):
        if model.name == operation_name:
            return (AWSResponse("https://out.s3.amazonaws.com/", 403, {}, None),
                    {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                     "ResponseMetadata": {"HTTPStatusCode": 403}})
        return None
    return handler


def test_without_list_permission_it_explains_once_and_falls_back_to_head(client, s3, caplog):
    rows = pending(client, 10)
    complete(s3, rows[:4])
    client.tracker.s3.client.meta.events.register("before-call.s3.ListObjectsV2", _deny("ListObjectsV2"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # notices go through logging, never into the running cell
        changes = client.tracker.refresh()
    assert [r.getMessage() for r in caplog.records if "s3:ListBucket" in r.getMessage()]
    assert len(changes) == 4
    assert list(client.tracker.notices) == ["list-denied:out"]
    before = client.tracker.stats.total_s3_requests
    client.tracker.refresh()
    # No second listing attempt: 6 ids x (HEAD output + HEAD failure)
    assert client.tracker.stats.total_s3_requests - before == 12


def test_head_403_reads_as_not_there_yet(client, s3, caplog):
    [row] = pending(client, 1)
    client.tracker.s3.client.meta.events.register("before-call.s3.HeadObject", _deny("HeadObject"))
    assert client.tracker.refresh() == []
    assert "403" in client.tracker.notices["head-forbidden:out"]
    assert any("403" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert client.journal.get(row.inference_id).status is Status.PENDING


def test_expiry_after_ttl_timeout_and_grace(client, s3):
    [row] = pending(client, 1, request={"request_ttl_seconds": 60, "invocation_timeout_seconds": 10})
    deadline = row.invoked_at + 70 + client.tracker.grace
    assert client.tracker.refresh(now=deadline - 1) == []
    [change] = client.tracker.refresh(now=deadline + 1)
    assert change.new is Status.EXPIRED


def test_step_backs_off_while_nothing_changes_and_resets_on_change(client, s3):
    client.settings.poll_interval = 8
    tracker = client.tracker
    rows = pending(client, 3)
    now = time.time()
    gaps = []
    for _ in range(8):
        assert tracker.step(now) == []
        gaps.append(tracker.next_due - now)
        assert tracker.step(now + 0.01) is None  # not due yet
        now = tracker.next_due
    assert gaps[0] < gaps[3] < gaps[-1] <= 8 * 1.11
    complete(s3, rows)
    assert len(tracker.step(now)) == 3
    assert tracker.next_due - now <= MIN_INTERVAL * 1.11


def test_background_thread_publishes_changes_to_subscribers(client, s3):
    seen = []
    all_seen = threading.Event()

    def listener(changes):
        seen.extend(c.inference_id for c in changes)
        if len(seen) >= 5:
            all_seen.set()

    unsubscribe = client.tracker.subscribe(listener)
    rows = pending(client, 5)
    client.tracker.start().start()  # twice is harmless
    complete(s3, rows)
    client.tracker.poke()
    assert all_seen.wait(10)
    client.tracker.stop()
    assert sorted(seen) == sorted(r.inference_id for r in rows)
    assert not client.tracker.running
    unsubscribe()
    assert client.tracker.bus.listener_count == 0


def test_a_failing_listener_does_not_stop_tracking(client, s3, caplog):
    heard = []
    client.tracker.subscribe(lambda changes: 1 / 0)
    client.tracker.subscribe(heard.append)
    rows = pending(client, 2)
    complete(s3, rows)
    assert len(client.tracker.refresh()) == 2
    assert len(heard[-1]) == 2  # the listener after the broken one still heard the changes
    [logged] = [r for r in caplog.records if r.name == "sm_async_nb.tracking.bus"]
    assert logged.exc_info and logged.exc_info[0] is ZeroDivisionError


def test_to_frame_has_a_row_per_invocation_with_timings(client, s3):
    rows = pending(client, 3, label="lbl")
    complete(s3, rows[:1])
    client.tracker.refresh()
    frame = client.tracker.to_frame()
    assert len(frame) == 3
    assert set(frame["status"]) == {"COMPLETED", "PENDING"}
    assert {"submitted_at", "finished_at", "latency_s", "output_location", "label"} <= set(frame.columns)


def test_rows_of_dead_submitters_are_resolved_on_start(moto_aws, tmp_path):
    import sm_async_nb as sma

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    path = tmp_path / "j.sqlite3"
    with sma.AsyncInferenceClient("s3://input-bucket/p/", journal_path=path) as c:
        origin = c.origin
        c.journal.add([
            InvocationRecord("uploaded", "ep", origin=origin, submit_step=SubmitStep.INVOKING,
                             input_location="s3://input-bucket/p/uploaded.csv", owner_pid=int(dead)),
            InvocationRecord("not-uploaded", "ep", origin=origin, owner_pid=int(dead)),
            InvocationRecord("mine", "ep", origin=origin, owner_pid=os.getpid()),
        ])
    with sma.AsyncInferenceClient("s3://input-bucket/p/", journal_path=path) as c:
        assert sorted(c.recovered) == ["not-uploaded", "uploaded"]
        assert "resubmit() finishes it" in c.invocation("uploaded").error
        assert "submit the payload again" in c.invocation("not-uploaded").error
        assert c.invocation("mine").status is Status.SUBMITTING
