"""The one runner with a streamed plan (a dataset, read while it is sent), against moto's in-process
mock: one window held at a time, one stop signal for the whole run, Ctrl-C delivered the way
ipykernel does on Windows, and the resume seam of the dataset reader."""

from __future__ import annotations

import _thread
import threading
from collections import Counter

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from botocore.awsrequest import AWSResponse

import sm_async_nb as sma
from sm_async_nb.records import Status
from sm_async_nb.submission import datasets
from sm_async_nb.submission.plans import STREAM_WINDOW_MIN, STREAM_WINDOW_PER_WORKER

INVOKE = "before-call.sagemaker-runtime.InvokeEndpointAsync"
ROWS = 400


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"a": list(range(ROWS))}), path, row_group_size=37)
    return path


@pytest.fixture
def window(client):
    return max(STREAM_WINDOW_MIN, STREAM_WINDOW_PER_WORKER * client.max_workers)


class Invokes(list):
    """The inference id of every InvokeEndpointAsync call, in order. ``on_call(fn)`` runs ``fn(n)`` before
    the n-th call (1-based); an answer it returns is what the call gets instead of moto's."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.hooks: list = []

    def on_call(self, hook) -> None:
        self.hooks.append(hook)

    def __call__(self, params, **_):
        with self.lock:
            self.append(params["headers"]["X-Amzn-SageMaker-Inference-Id"])
            n = len(self)
        for hook in list(self.hooks):
            answer = hook(n)
            if answer is not None:
                return answer
        return None


@pytest.fixture
def invokes(client):
    calls = Invokes()
    client.aws.runtime.meta.events.register(INVOKE, calls)
    return calls


def expired(n: int, first: int):
    """From call ``first`` on, what AWS answers once the session's credentials have expired."""
    if n < first:
        return None
    return AWSResponse("https://runtime.example", 400, {}, None), {
        "Error": {"Code": "ExpiredTokenException", "Message": "The security token included in the request is expired"},
        "ResponseMetadata": {"HTTPStatusCode": 400}}


def test_expired_credentials_stop_the_whole_run_and_the_rest_is_never_read(client, dataset, invokes, window):
    invokes.on_call(lambda n: expired(n, first=10))
    with pytest.raises(sma.SubmissionError) as caught:
        client.submit_dataset("ep", dataset, rows_per_request=1, inference_id="cut")
    exc = caught.value
    message = str(exc)
    assert "credentials have expired" in message and "re-run with inference_id='cut'" in message
    assert exc.batch is not None and exc.batch.batch_id == "batch-cut" and "\n" not in message
    rows = client.records()
    # One window was read and journaled, not the dataset: the stop ends the run, not one window.
    assert len(rows) <= window < ROWS
    assert len(invokes) <= 9 + client.max_workers
    counts = Counter(r.status for r in rows)
    assert counts[Status.PENDING] == 9 and counts[Status.SUBMITTING] == 0
    assert all("expired" in r.error for r in rows if r.status is Status.ERROR)
    # Credentials back: the same call continues, and nothing is sent twice.
    invokes.hooks.clear()
    accepted = {r.inference_id for r in rows if r.status is Status.PENDING}
    before = len(invokes)
    batch = client.submit_dataset("ep", dataset, rows_per_request=1, inference_id="cut")
    assert batch.status_counts() == {"PENDING": ROWS}
    assert not accepted & set(invokes[before:]) and len(set(invokes[before:])) == ROWS - len(accepted)


def test_a_dataset_run_holds_at_most_one_window(client, dataset, invokes, window):
    held: list[int] = []
    invokes.on_call(lambda n: held.append(client.journal.counts(client.origin).get(Status.SUBMITTING, 0)))
    batch = client.submit_dataset("ep", dataset, rows_per_request=1)
    assert batch.status_counts() == {"PENDING": ROWS} and len(invokes) == ROWS
    assert max(held) <= window < ROWS  # journaled and not yet answered: what the run holds


def test_ctrl_c_from_interrupt_main_stops_a_dataset_which_the_same_call_continues(client, dataset, invokes, window):
    invokes.on_call(lambda n: _thread.interrupt_main() if n == 30 else None)
    with pytest.raises(sma.SubmissionInterrupted) as caught:
        client.submit_dataset("ep", dataset, rows_per_request=1, inference_id="resume")
    exc = caught.value
    assert "re-run with inference_id='resume'" in str(exc) and exc.batch is not None
    assert 30 <= exc.sent < ROWS and exc.not_sent == ROWS - exc.sent
    rows = client.records()
    assert len(rows) <= window + window // 2 and not [r for r in rows if r.status is Status.SUBMITTING]
    invokes.hooks.clear()
    batch = client.submit_dataset("ep", dataset, rows_per_request=1, inference_id="resume")
    assert batch.status_counts() == {"PENDING": ROWS}
    assert Counter(invokes).most_common(1)[0][1] == 1  # every id invoked once, over both runs


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_dataset_is_read_from_any_request_on(client, tmp_path, kind):
    table = pa.table({"a": list(range(103)), "b": [f"r{i}" for i in range(103)]})
    path = tmp_path / f"t.{kind}"
    if kind == "parquet":
        pq.write_table(table, path, row_group_size=7)
    else:
        pacsv.write_csv(table, path)
    opened = datasets.open_dataset(client.ctx, str(path), None)
    every = list(datasets.chunks(opened, 5))
    later = list(datasets.chunks(opened, 5, start=3))
    assert [first for first, _ in later] == [first for first, _ in every][3:] and later[0][0] == 15
    assert [t.to_pylist() for _, t in later] == [t.to_pylist() for _, t in every][3:]
    assert later[-1][1].num_rows == 3 and list(datasets.chunks(opened, 5, start=21)) == []
