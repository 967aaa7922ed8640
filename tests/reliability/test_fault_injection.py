"""Under injected faults and a stack that goes away mid-batch: nothing lost, nothing duplicated."""

from __future__ import annotations

import threading
import time

from botocore.awsrequest import AWSResponse

from sm_async_nb.local import LocalStack
from sm_async_nb.local.service.models import RuntimeStatus
from sm_async_nb.records import JobState, Status

COMPLETED = RuntimeStatus.COMPLETED.value


def echo(body: bytes, content_type: str):
    return body, "text/csv"


def input_keys(stack, prefix="inputs/"):
    s3 = stack.boto3_client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.input_bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_thousand_submissions_with_ten_percent_faults(tmp_path):
    payloads = [f"{i},{i * 2}\n" for i in range(1000)]
    with LocalStack(model=echo, concurrency=8, latency_ms=5, fault_rate=0.1, seed=11) as stack, \
            stack.client(journal_path=tmp_path / "journal.sqlite3", max_workers=16) as client:
        batch = client.submit_many(stack.endpoint_name, payloads, inference_id="faulty")
        assert not any(p.status is Status.SUBMITTING for p in batch.parts())
        batch.wait(timeout=300)
        parts = batch.parts()
        counts = batch.status_counts()
        assert set(counts) <= {"COMPLETED", "ERROR"} and sum(counts.values()) == 1000, counts
        assert all(p.error for p in parts if p.status is Status.ERROR)
        # Every id has exactly one input object and at most one invocation.
        ids = [f"faulty-{i:04d}" for i in range(1000)]
        assert sorted(input_keys(stack)) == sorted(f"inputs/{i}.csv" for i in ids)
        records = stack.records()
        assert len(records) == len({r["inference_id"] for r in records})
        completed = {p.inference_id for p in parts if p.status is Status.COMPLETED}
        assert completed == {r["inference_id"] for r in records if r["status"] == COMPLETED}
        # The outputs are the right ones, in order, despite faults on every kind of request.
        frame = batch.result(errors="skip")
        assert frame[0].tolist() == [int(p.inference_id[-4:]) for p in parts if p.status is Status.COMPLETED]
        faults = stack.stats["faults_injected"]
    print(f"\n1,000 submissions under 10% faults: {counts}, {faults} faults injected and retried")
    assert faults > 100, faults


def test_stack_stopped_mid_batch_and_restarted(tmp_path, free_port):
    journal = tmp_path / "journal.sqlite3"
    ports = {"moto_port": free_port(), "runtime_port": free_port()}
    payloads = [f"{i},1\n" for i in range(200)]
    first = LocalStack(model=echo, latency_ms=20, **ports).start()
    client = first.client(journal_path=journal, max_workers=4)
    submitting = threading.Thread(target=client.submit_many,
                                  args=(first.endpoint_name, payloads), kwargs={"inference_id": "restart"})
    submitting.start()
    deadline = time.time() + 60
    while len(first.records()) < 40 and time.time() < deadline:
        time.sleep(0.01)
    first.stop()
    submitting.join(timeout=120)
    assert not submitting.is_alive()
    rows = client.records()
    assert len(rows) == 200
    assert {r.status for r in rows} <= {Status.PENDING, Status.COMPLETED, Status.ERROR}
    stopped_with = {r.inference_id: r.status for r in rows}
    assert Status.ERROR in stopped_with.values()
    client.close()

    with LocalStack(model=echo, **ports) as second, second.client(journal_path=journal) as client:
        assert client.origin == client.records()[0].origin  # same ports: the same AWS target
        batch = client.submit_many(second.endpoint_name, payloads, inference_id="restart")
        resent = {r["inference_id"] for r in second.records()}
        assert resent == {i for i, s in stopped_with.items() if s is Status.ERROR}
        client.tracker.wait_for(list(resent), timeout=120)
        # What the first stack had accepted died with it: those end EXPIRED at their deadline, not stuck.
        lost = [i for i, s in stopped_with.items() if s is not Status.ERROR]
        client.tracker.refresh(now=time.time() + 21600 + 900 + client.tracker.grace + 1)
        final = client.journal.get_many(list(stopped_with))
        assert all(final[i].status is Status.COMPLETED for i in resent)
        assert all(final[i].status in (Status.EXPIRED, Status.COMPLETED) for i in lost)
        assert batch.status_counts().get("PENDING", 0) == 0



def test_a_job_pauses_on_expired_credentials_and_resume_finishes_it(tmp_path):
    """A problem every request would hit (here expired credentials on the invoke) pauses a flow-controlled
    job: its QUEUED rows wait for resume() instead of each window ending ERROR one after the other."""
    expired = threading.Event()

    def answer(**_):
        if not expired.is_set():
            return None
        return (AWSResponse("https://runtime.sagemaker/", 403, {}, None),
                {"Error": {"Code": "ExpiredTokenException", "Message": "The security token included in the "
                           "request is expired"}, "ResponseMetadata": {"HTTPStatusCode": 403}})

    with LocalStack(model=echo, delay=0.02) as stack, \
            stack.client(journal_path=tmp_path / "journal.sqlite3", max_workers=4) as client:
        client.aws.runtime.meta.events.register("before-call.sagemaker-runtime.InvokeEndpointAsync", answer)
        batch = client.submit_many(stack.endpoint_name, [f"{i},1\n" for i in range(300)], inference_id="creds",
                                   max_pending=8)
        deadline = time.time() + 60
        while len(stack.records()) < 30 and time.time() < deadline:
            time.sleep(0.01)
        expired.set()
        deadline = time.time() + 60
        while batch.job_state is not JobState.PAUSED and time.time() < deadline:
            time.sleep(0.05)
        assert batch.job_state is JobState.PAUSED
        time.sleep(1.5)  # a job that did not pause would end a window of rows ERROR on every turn meanwhile
        counts = batch.status_counts()
        assert counts.get("ERROR", 0) <= 4, counts  # the invokes in flight when the credentials expired
        assert counts.get("QUEUED", 0) >= 250, counts
        assert "paused" in client.jobs.problem and "resume()" in client.jobs.problem, client.jobs.problem

        expired.clear()  # credentials renewed
        assert batch.resume() is True
        assert client.jobs.problem is None
        deadline = time.time() + 180
        while batch.status_counts().get("QUEUED", 0) and time.time() < deadline:
            time.sleep(0.1)
        client.tracker.wait_for([p.inference_id for p in batch.parts() if p.status is not Status.ERROR],
                                timeout=180)
        final = batch.status_counts()
        assert final.get("COMPLETED", 0) == 300 - counts.get("ERROR", 0), final
