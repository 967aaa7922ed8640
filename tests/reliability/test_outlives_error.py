"""Work that outlives its error (issue 22, mechanism 3): when one part fails, nothing else keeps going
unseen after the error is reported, and nothing reports success for work that was never done.

What decides: download() waits for (or cancels) every other part before it raises, and a file holding its
output is recognised by size and LastModified; the journal checks its file on every read, so the tracker
and wait() see a deleted journal at once; the batch row's size is compared with the slots journaled, so a
dataset submission that stopped part-way is never "done"."""

from __future__ import annotations

import _thread
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.awsrequest import AWSResponse

import sm_async_nb as sma
from sm_async_nb.aws.s3uri import S3Uri
from sm_async_nb.errors import JournalError
from sm_async_nb.records import Status


def echo(body: bytes, content_type: str):
    return body, "text/csv"


@pytest.fixture(scope="module")
def endpoints(stack):
    stack.add_endpoint("outlive-echo", model=echo)
    stack.add_endpoint("outlive-slow", model=echo, delay=4.0)
    return {"echo": "outlive-echo", "slow": "outlive-slow"}


@pytest.fixture
def client(stack, tmp_path):
    with stack.client(journal_path=tmp_path / "journal.sqlite3", max_workers=4) as c:
        yield c


def _error(code: str, status: int, message: str):
    return (AWSResponse("https://s3.amazonaws.com/", status, {}, None),
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}})


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- download() ----------------------------------------------------------------------------------

def test_a_failed_download_reports_every_failure_after_the_others_landed_and_a_rerun_adds_no_copies(
        client, endpoints, stack, tmp_path):
    batch = client.submit_many(endpoints["echo"], [f"{i},{i}\n" for i in range(8)]).wait(timeout=30)
    parts = batch.parts()
    gone = S3Uri.parse(parts[2].output_location)
    stack.boto3_client("s3").delete_object(Bucket=gone.bucket, Key=gone.key)  # a lifecycle rule took it
    denied_key = S3Uri.parse(parts[5].output_location).key

    def slow_or_denied(params, **_):
        if params["url_path"].endswith(denied_key):
            return _error("InternalError", 500, "We encountered an internal error.")  # outlasts the retries
        time.sleep(0.3)  # the other downloads are still running when the failures come back
        return None

    s3 = client.aws.s3
    s3.meta.events.register("before-call.s3.GetObject", slow_or_denied)
    folder = tmp_path / "out"
    with pytest.raises(sma.OutputMissing) as caught:
        batch.download(folder)
    landed = _files(folder)
    time.sleep(1.0)
    assert _files(folder) == landed, "downloads went on landing files after the error"
    message = str(caught.value)
    assert "\n" not in message and parts[2].inference_id in message and parts[5].inference_id in message
    assert "2 of 8 outputs were not downloaded" in message
    assert set(caught.value.failures) == {parts[2].inference_id, parts[5].inference_id}
    assert len(landed) == 6 and not [n for n in landed if n.endswith(".part")]
    assert sorted(p.name for p in caught.value.paths) == landed

    s3.meta.events.unregister("before-call.s3.GetObject", slow_or_denied)
    with pytest.raises(sma.OutputMissing):  # the removed output is still missing, the denied one now lands
        batch.download(folder)
    assert len(_files(folder)) == 7 and not [n for n in _files(folder) if "-2." in n], _files(folder)
    for path in folder.iterdir():
        assert path.read_bytes().count(b",") == 1  # each file holds one whole output


def test_downloading_twice_keeps_the_files_and_makes_no_copies(client, endpoints, tmp_path):
    batch = client.submit_many(endpoints["echo"], ["a\n", "b\n", "c\n"]).wait(timeout=30)
    first = batch.download(tmp_path / "twice")
    stamps = [p.stat().st_mtime_ns for p in first]
    again = batch.download(tmp_path / "twice")
    assert again == first and [p.stat().st_mtime_ns for p in again] == stamps
    assert len(_files(tmp_path / "twice")) == 3
    (tmp_path / "twice" / first[0].name).write_bytes(b"edited by hand\n")  # not the output any more: kept
    third = batch.download(tmp_path / "twice")
    assert third[0] != first[0] and third[1:] == first[1:]
    assert (tmp_path / "twice" / first[0].name).read_bytes() == b"edited by hand\n"


def test_a_failure_every_download_would_meet_cancels_the_rest(client, endpoints, tmp_path):
    batch = client.submit_many(endpoints["echo"], [f"{i}\n" for i in range(40)]).wait(timeout=30)
    calls = {"n": 0}

    def expired(params, **_):
        calls["n"] += 1
        time.sleep(0.05)
        return _error("ExpiredToken", 400, "The provided token has expired.")

    client.aws.s3.meta.events.register("before-call.s3.GetObject", expired)
    with pytest.raises(sma.AwsError, match="expired") as caught:
        batch.download(tmp_path / "expired")
    assert calls["n"] < 40 and "not tried after that error" in str(caught.value)
    assert _files(tmp_path / "expired") == []


# --- the journal deleted under a running tracker ---------------------------------------------------

def test_a_journal_deleted_while_the_tracker_runs_stops_wait_at_once(client, endpoints, tmp_path):
    client.tracker.start()
    inv = client.submit(endpoints["slow"], "1,2\n")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{client.journal.path}{suffix}").unlink(missing_ok=True)
    outcome: dict[str, BaseException] = {}

    def waiting():
        try:
            inv.wait()  # no timeout: must not hang
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=waiting, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "wait() hung on a deleted journal"
    assert time.monotonic() - started < 5
    assert isinstance(outcome.get("error"), JournalError) and "deleted" in str(outcome["error"])
    assert client.tracker.problem and "deleted or replaced" in client.tracker.problem
    with pytest.raises(JournalError):
        inv.wait(timeout=30)  # with a timeout too: at once, not "they keep running"


# --- a dataset submission stopped part-way ---------------------------------------------------------

@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"a": list(range(400)), "b": list(range(400))}), path, row_group_size=50)
    return path


def test_after_ctrl_c_a_dataset_batch_is_not_done_and_its_results_say_rows_are_missing(
        client, endpoints, dataset, tmp_path):
    sent = {"n": 0}

    def interrupt_after_some(**_):
        sent["n"] += 1
        if sent["n"] == 30:
            _thread.interrupt_main()  # how ipykernel interrupts on Windows
        time.sleep(0.01)

    client.aws.runtime.meta.events.register("before-call.sagemaker-runtime.InvokeEndpointAsync",
                                            interrupt_after_some)
    with pytest.raises(sma.SubmissionInterrupted) as caught:
        client.submit_dataset(endpoints["echo"], dataset, rows_per_request=1, inference_id="ds-ctrl-c")
    client.aws.runtime.meta.events.unregister("before-call.sagemaker-runtime.InvokeEndpointAsync",
                                              interrupt_after_some)
    batch = caught.value.batch
    assert batch is not None and sent["n"] < 200
    batch.resubmit()  # what was journaled but not sent goes out; the rows never read stay unsent
    batch.wait(timeout=60)
    assert batch.unsent > 0 and not batch.done, batch
    assert "never sent" in repr(batch)
    with pytest.raises(sma.SubmissionError, match=r"never sent \(rows from \d+ on\).*inference_id='ds-ctrl-c'"):
        batch.result()
    with pytest.raises(sma.SubmissionError, match="never sent"):
        batch.write_results(tmp_path / "partial.parquet")
    assert not (tmp_path / "partial.parquet").exists()
    partial = batch.result(errors="skip")
    assert partial.attrs["unsent"] == batch.unsent and len(partial) == 400 - batch.unsent

    again = client.submit_dataset(endpoints["echo"], dataset, rows_per_request=1, inference_id="ds-ctrl-c")
    assert again.batch_id == batch.batch_id
    full = again.wait(timeout=120).result()
    assert again.done and again.unsent == 0 and full[0].tolist() == list(range(400))


def test_expired_credentials_stop_a_dataset_reading_and_its_batch_knows(client, endpoints, dataset):
    uploads = {"n": 0}

    def expire_after_some(**_):
        uploads["n"] += 1
        if uploads["n"] > 10:
            return _error("ExpiredToken", 400, "The provided token has expired.")
        return None

    client.aws.s3.meta.events.register("before-call.s3.PutObject", expire_after_some)
    with pytest.raises(sma.SubmissionError, match="expired.*inference_id='ds-expired'") as caught:
        client.submit_dataset(endpoints["echo"], dataset, rows_per_request=1, inference_id="ds-expired")
    batch = caught.value.batch
    journaled = len(batch.parts())
    assert journaled < 200, "the dataset kept being read and journaled after the stop"
    assert batch.unsent == 400 - journaled and not batch.done
    assert not [p for p in batch.parts() if p.status is Status.SUBMITTING]


def test_a_base_exception_in_a_send_leaves_no_row_submitting(client, endpoints):
    class Stop(BaseException):
        pass

    def crash(params, **_):
        if params["headers"].get("X-Amzn-SageMaker-Inference-Id", "").endswith("-0003"):
            raise Stop("a BaseException from deep inside a send")
        return None

    client.aws.runtime.meta.events.register("before-call.sagemaker-runtime.InvokeEndpointAsync", crash)
    with pytest.raises(Stop):
        client.submit_many(endpoints["echo"], [f"{i}\n" for i in range(8)], inference_id="crash-in-send")
    client.aws.runtime.meta.events.unregister("before-call.sagemaker-runtime.InvokeEndpointAsync", crash)
    batch = client.batch("batch-crash-in-send")
    assert not [p for p in batch.parts() if p.status is Status.SUBMITTING]
    assert batch.parts()[3].status is Status.ERROR
    again = client.submit_many(endpoints["echo"], [f"{i}\n" for i in range(8)], inference_id="crash-in-send")
    assert again.wait(timeout=60).status_counts() == {"COMPLETED": 8}


def test_interrupt_main_stops_a_batch(client, endpoints):
    sent = {"n": 0}

    def interrupt_soon(**_):
        sent["n"] += 1
        if sent["n"] == 5:
            _thread.interrupt_main()
        time.sleep(0.02)

    client.aws.runtime.meta.events.register("before-call.sagemaker-runtime.InvokeEndpointAsync", interrupt_soon)
    with pytest.raises(sma.SubmissionInterrupted) as caught:
        client.submit_many(endpoints["echo"], [f"{i}\n" for i in range(300)])
    time.sleep(0.3)
    assert sent["n"] < 40, "requests went on being sent after the interrupt"
    counts = caught.value.batch.status_counts()
    assert counts.get("ERROR", 0) >= 250 and "SUBMITTING" not in counts
