"""Datasets larger than memory (SPEC §12, issue 18) on the local stack: submit_dataset streams a
Parquet/CSV source in record batches, write_results streams outputs into Parquet in input order,
an interrupted submission resumes, bad sources are one line with nothing sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import sm_async_nb as sma


def echo(body: bytes, content_type: str):
    return body, "text/csv"


@pytest.fixture(scope="module")
def endpoint(stack):
    stack.add_endpoint("ds-echo", model=echo, concurrency=8)
    return "ds-echo"


def make_parquet(folder, rows: int, files: int = 3, seed: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per = -(-rows // files)
    for f in range(files):
        n = min(per, rows - f * per)
        ids = np.arange(f * per, f * per + n)
        frame = pd.DataFrame({"row": ids, "x": rng.normal(size=n).round(6), "y": rng.integers(0, 100, n)})
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"part-{f}.parquet",
                       row_group_size=10_000)
    return folder


@pytest.fixture(scope="module")
def endpoint_s3(stack):
    s3 = stack.boto3_client("s3")
    s3.create_bucket(Bucket="ds-user-data")
    return s3, "ds-user-data"


@pytest.fixture
def client(stack, tmp_path):
    with stack.client(journal_path=tmp_path / "journal.sqlite3", max_workers=8) as c:
        yield c


def test_two_hundred_thousand_rows_streamed_and_written_back_row_by_row(client, endpoint, tmp_path):
    source = make_parquet(tmp_path / "table", 200_000)
    batch = client.submit_dataset(endpoint, source, rows_per_request=2_000, label="big")
    assert len(batch) == 100 and batch.record.kind.value == "dataset"
    batch.wait(timeout=240)
    assert batch.status_counts() == {"COMPLETED": 100}
    written = batch.write_results(tmp_path / "scored.parquet")
    back = pq.read_table(written).to_pandas()
    original = pads.dataset(source, format="parquet").to_table().to_pandas()
    assert len(back) == len(original) == 200_000
    assert back["0"].tolist() == original["row"].tolist()  # every row, in input order
    assert np.allclose(back["1"].to_numpy(), original["x"].to_numpy())
    folder = batch.write_results(tmp_path / "scored-dataset")
    assert pads.dataset(folder, format="parquet").count_rows() == 200_000


def test_a_csv_glob_with_selected_columns(client, endpoint, tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for i in range(3):
        pd.DataFrame({"a": range(i * 10, i * 10 + 10), "b": ["x"] * 10, "c": range(10)}).to_csv(
            folder / f"f{i}.csv", index=False)
    (folder / "notes.txt").write_text("not data")
    batch = client.submit_dataset(endpoint, str(folder / "*.csv"), rows_per_request=7, columns=["c", "a"])
    assert len(batch) == 5  # 30 rows, 7 per request
    result = batch.wait(timeout=60).result()
    assert result[1].tolist() == list(range(30)) and result.index.tolist() == list(range(30))


def test_an_s3_dataset_to_an_s3_destination(client, endpoint, stack, tmp_path):
    s3 = stack.boto3_client("s3")
    s3.create_bucket(Bucket="lake")
    local = make_parquet(tmp_path / "src", 5_000, files=2)
    for path in local.iterdir():
        s3.upload_file(str(path), "lake", f"table/{path.name}")
    batch = client.submit_dataset(endpoint, "s3://lake/table/", rows_per_request=1_000)
    batch.wait(timeout=60)
    assert batch.write_results("s3://lake/scored/") == "s3://lake/scored/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="scored/")["Contents"]]
    assert keys == ["scored/part-00000.parquet"]
    body = s3.get_object(Bucket="lake", Key=keys[0])["Body"].read()
    assert pq.read_table(pa.BufferReader(body)).num_rows == 5_000


def test_an_interrupted_dataset_submission_resumes_with_the_same_prefix(client, endpoint, stack, tmp_path):
    source = make_parquet(tmp_path / "resume", 6_000, files=2)

    sends = []
    lock = threading.Lock()

    def slow(**_):
        # Ctrl-C once 30 invokes are under way: deterministic, whatever the machine's load.
        with lock:
            sends.append(1)
            if len(sends) == 30:
                os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.02)

    client.aws.runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpointAsync", slow)
    with pytest.raises(sma.SubmissionInterrupted) as caught:
        client.submit_dataset(endpoint, source, rows_per_request=20, inference_id="resume-me")
    exc = caught.value
    assert "inference_id='resume-me'" in str(exc) and exc.batch is not None and 0 < exc.sent < 300
    client.aws.runtime.meta.events.unregister("before-send.sagemaker-runtime.InvokeEndpointAsync", slow)
    batch = client.submit_dataset(endpoint, source, rows_per_request=20, inference_id="resume-me")
    assert len(batch) == 300
    batch.wait(timeout=120)
    assert batch.status_counts() == {"COMPLETED": 300}
    ids = set(batch.inference_ids)
    assert sum(r["inference_id"] in ids for r in stack.records(endpoint)) == 300  # none sent twice
    assert batch.result()[0].tolist() == list(range(6_000))


def test_bad_sources_are_one_line_and_send_nothing(client, endpoint, stack, tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4\n" + "5,6\n" * 1000 + "7,8,9\n")
    typed = tmp_path / "data.json"
    typed.write_text("[]")
    good = make_parquet(tmp_path / "good", 100, files=1)
    mixed = tmp_path / "mixed"  # a second file whose column holds strings where the first holds numbers
    mixed.mkdir()
    pq.write_table(pa.table({"x": list(range(100))}), mixed / "a.parquet")
    pq.write_table(pa.table({"x": ["oops"] * 10}), mixed / "b.parquet")
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"l": [[1, 2, 3]], "b": [b"\x00\xff"]}), nested)
    received = len(stack.records())
    cases = [
        (tmp_path / "nope.parquet", {}, "does not exist"),
        (str(tmp_path / "*.nothing"), {}, "No file matches"),
        (ragged, {}, "Expected 2 columns, got 3: 7,8,9 (nothing was sent)"),
        (good, {"columns": ["row", "missing"]}, "has no column 'missing'"),
        (typed, {}, "reads Parquet (.parquet) or CSV (.csv) files"),
        (good, {"rows_per_request": 0}, "rows_per_request must be an integer from 1 to 10,000,000"),
        (good, {"rows_per_request": 10**12}, "rows_per_request must be an integer from 1 to 10,000,000"),
        ("s3://no-such-bucket-anywhere/t/", {}, "does not exist"),
        ("s3://", {}, "names no bucket"),
        (123, {}, "needs a path, glob or s3:// URI"),
        (good, {"columns": "row"}, "columns must be a list of column names"),
        (good, {"columns": []}, "non-empty list of distinct column names"),
        (good, {"columns": ["row", "row"]}, "non-empty list of distinct column names"),
        (good, {"acept": "text/csv"}, "Unknown option 'acept' (did you mean accept?)"),
        (mixed, {}, "column 'x' is string in"),
        (nested, {}, "which text/csv cannot carry"),
    ]
    for source, kwargs, message in cases:
        with pytest.raises(sma.ValidationError) as caught:
            client.submit_dataset(endpoint, source, **kwargs)
        assert message in str(caught.value) and "\n" not in str(caught.value), (source, str(caught.value))
    assert client.records() == [] and len(stack.records()) == received


def test_sources_are_read_as_named(client, endpoint, tmp_path, endpoint_s3):
    folder = tmp_path / "literal"
    folder.mkdir()
    pd.DataFrame({"a": [111]}).to_csv(folder / "d1.csv", index=False)
    pd.DataFrame({"a": [999]}).to_csv(folder / "d[1].csv", index=False)
    # an existing name is literal, even with glob characters in it
    assert client.submit_dataset(endpoint, folder / "d[1].csv").wait(timeout=30).result()[0].tolist() == [999]
    loop = tmp_path / "loop"  # a folder holding a link to itself is read once, not until ELOOP
    loop.mkdir()
    os.symlink(loop, loop / "self")
    pd.DataFrame({"a": [1, 2]}).to_csv(loop / "x.csv", index=False)
    assert len(client.submit_dataset(endpoint, loop, rows_per_request=1)) == 2
    s3, bucket = endpoint_s3
    s3.put_object(Bucket=bucket, Key="table/a.csv", Body=b"v\n1\n")
    s3.put_object(Bucket=bucket, Key="table/archive/old.csv", Body=b"v\n999\n")
    # * stays within one path segment on S3, as it does locally; ** spans them
    shallow = client.submit_dataset(endpoint, f"s3://{bucket}/table/*.csv").wait(timeout=30)
    assert shallow.result()[0].tolist() == [1]
    deep = client.submit_dataset(endpoint, f"s3://{bucket}/table/**/*.csv").wait(timeout=30)
    assert sorted(deep.result()[0].tolist()) == [1, 999]


def test_the_magic_streams_a_dataset(stack, endpoint, tmp_path, magic_shell):
    source = make_parquet(tmp_path / "m", 50, files=1)
    with stack.client(journal_path=tmp_path / "j.sqlite3") as client:
        shell = magic_shell(client)
        shell.run_line_magic("invoke_async", f"{endpoint} --dataset {source} --rows-per-request 20 -o job")
        assert len(shell.user_ns["job"]) == 3


MEASURE = textwrap.dedent("""
    import json, sys
    import sm_async_nb as sma
    source, dest, journal, rows = sys.argv[1:5]
    client = sma.AsyncInferenceClient(journal_path=journal, max_workers=8)
    client.input_prefix()
    import pyarrow.dataset, pandas  # imported by the work below too: part of the baseline

    import threading, psutil
    process = psutil.Process()
    samples, running = [], [True]
    def sample():
        while running[0]:
            samples.append(process.memory_info().rss)
            threading.Event().wait(0.005)
    baseline = process.memory_info().rss
    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    batch = client.submit_dataset("ds-echo", source, rows_per_request=int(rows))
    batch.wait(timeout=600)
    batch.write_results(dest)
    running[0] = False
    watcher.join()
    peak = max(samples + [process.memory_info().rss])
    print("RESULT " + json.dumps({"grown_mb": (peak - baseline) / 2**20, "counts": batch.status_counts()}))
""")


def _grown_mb(stack, tmp_path, name: str, rows: int) -> float:
    source = make_parquet(tmp_path / name, rows, files=4)
    done = subprocess.run([sys.executable, "-c", MEASURE, str(source), str(tmp_path / f"{name}.parquet"),
                           str(tmp_path / f"{name}.sqlite3"), "2000"], env={**os.environ, **stack.env},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result["counts"] == {"COMPLETED": -(-rows // 2000)}
    return result["grown_mb"]


def test_peak_memory_does_not_grow_with_the_dataset(stack, endpoint, tmp_path):
    small = _grown_mb(stack, tmp_path, "small", 20_000)
    large = _grown_mb(stack, tmp_path, "large", 200_000)  # 10x the rows
    # Generous margin over the measured baseline: streaming keeps the difference to a few MB
    # (the journal's rows), where holding the data would add ~10x.
    print(f"peak RSS growth: 20k rows {small:.1f} MB, 200k rows {large:.1f} MB")
    assert large < small + 60, f"20k rows grew {small:.0f} MB, 200k rows grew {large:.0f} MB"
