"""Inputs already in S3 (SPEC §11, issue 15) on the local stack: submit_s3 by prefix, list and
Series; the user's objects are never copied, moved or deleted; to_frame(), download(); outputs
that are not tables; a 300 MB file streamed with bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

import sm_async_nb as sma

BUCKET = "user-data"


def echo(body: bytes, content_type: str):
    return body, content_type or "application/octet-stream"


def picture(body: bytes, content_type: str):
    return b"\x89PNG\r\n\x1a\n" + body[:16], "image/png"


def refuse(body: bytes, content_type: str):
    raise ValueError("this model refuses everything")


@pytest.fixture(scope="module")
def endpoints(stack):
    for name, model in (("s3-echo", echo), ("s3-picture", picture), ("s3-refuse", refuse)):
        stack.add_endpoint(name, model=model)
    stack.add_endpoint("s3-sync", asynchronous=False)  # invoking it asynchronously is a permanent error
    s3 = stack.boto3_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


@pytest.fixture
def client(stack, tmp_path):
    with stack.client(journal_path=tmp_path / "journal.sqlite3") as c:
        yield c


def put(s3, key, body, content_type=None):
    extra = {"ContentType": content_type} if content_type else {}
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)
    return f"s3://{BUCKET}/{key}"


def user_objects(s3, prefix=""):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def our_inputs(stack):
    s3 = stack.boto3_client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.input_bucket, Prefix="inputs/")
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def test_a_prefix_of_fifty_objects_with_mixed_types(client, endpoints, stack):
    s3 = endpoints
    expected = {}
    for i in range(50):
        kind = i % 5
        if kind == 0:
            uri, ctype = put(s3, f"mixed/{i:02d}.csv", b"1,2\n", "text/csv"), "text/csv"
        elif kind == 1:
            uri, ctype = put(s3, f"mixed/{i:02d}.json", b'{"a": 1}', "binary/octet-stream"), "application/json"
        elif kind == 2:
            uri, ctype = put(s3, f"mixed/{i:02d}.parquet", b"PAR1", "application/octet-stream"), "application/x-parquet"
        elif kind == 3:
            uri, ctype = put(s3, f"mixed/{i:02d}.wav", b"RIFF....", "audio/wav"), "audio/wav"
        else:
            uri, ctype = put(s3, f"mixed/{i:02d}.bin", b"\x00\x01", None), "text/plain"  # generic: the option
        expected[uri] = ctype
    put(s3, "mixed/sub/", b"")  # a "folder" marker is not an input
    before_user, before_ours = user_objects(s3, "mixed/"), our_inputs(stack)
    batch = client.submit_s3("s3-echo", f"s3://{BUCKET}/mixed/", content_type="text/plain", label="mixed")
    assert len(batch) == 50 and batch.wait(timeout=60).status_counts() == {"COMPLETED": 50}
    frame = batch.to_frame()
    assert list(frame.columns)[:11] == ["inference_id", "input_location", "status", "output_location",
                                         "failure_location", "content_type", "output_bytes", "submitted_at",
                                         "finished_at", "latency_s", "failure_reason"]
    assert dict(zip(frame["input_location"], frame["content_type"], strict=True)) == expected
    received = {r["input_location"]: r["content_type"] for r in stack.records("s3-echo")}
    assert all(received[uri] == ctype for uri, ctype in expected.items())  # what the model was told
    assert user_objects(s3, "mixed/") == before_user  # never copied, moved or deleted
    assert our_inputs(stack) == before_ours  # and nothing uploaded to our input prefix
    assert all(r.user_input for r in batch.parts())


def test_a_pattern_filters_the_prefix(client, endpoints):
    for name in ("a.wav", "b.wav", "c.mp3", "deep/d.wav"):
        put(endpoints, f"audio/{name}", b"RIFF")
    batch = client.submit_s3("s3-echo", f"s3://{BUCKET}/audio/", pattern="*.wav")  # * stays within one segment
    assert sorted(p.input_location.rsplit("/", 1)[1] for p in batch.parts()) == ["a.wav", "b.wav"]
    deep = client.submit_s3("s3-echo", f"s3://{BUCKET}/audio/", pattern="**/*.wav")  # ** spans them
    assert sorted(p.input_location.rsplit("/", 1)[1] for p in deep.parts()) == ["a.wav", "b.wav", "d.wav"]
    assert len(client.submit_s3("s3-echo", f"s3://{BUCKET}/audio/", pattern="*/*.wav")) == 1
    top = client.submit_s3("s3-echo", f"s3://{BUCKET}/audio/", pattern="[!d]*.wav")
    assert len(top) == 2


def test_a_series_of_uris_aligns_results_to_its_index(client, endpoints):
    uris = pd.Series([put(endpoints, f"rows/{k}.csv", f"{k}\n".encode(), "text/csv") for k in "xyz"],
                     index=pd.Index(["doc-x", "doc-y", "doc-z"], name="doc"))
    result = client.submit_s3("s3-echo", uris, accept="text/csv").wait(timeout=30).result()
    assert result.index.tolist() == ["doc-x", "doc-y", "doc-z"] and result.index.name == "doc"
    assert result[0].tolist() == ["x", "y", "z"]


def test_one_missing_object_in_a_list_of_twenty_invokes_nothing(client, endpoints, stack):
    uris = [put(endpoints, f"twenty/{i}.csv", b"1\n", "text/csv") for i in range(20)]
    uris[13] = f"s3://{BUCKET}/twenty/missing.csv"
    received = len(stack.records())
    with pytest.raises(sma.ValidationError, match=r"s3://user-data/twenty/missing.csv does not exist"):
        client.submit_s3("s3-echo", uris)
    assert len(stack.records()) == received and client.records() == []


@pytest.mark.parametrize("source, message", [
    ("https://example.com/x.csv", "is not an S3 object URI"),
    (f"s3://{BUCKET}", "names no object"),
    ("s3://Bad_Bucket/k.csv", "does not name a valid bucket"),
    (f"s3://{BUCKET}/nothing-here/", "No object under"),
    ([f"s3://{BUCKET}/x.csv", 42], "42 is not an S3 object URI"),
    ([], "The source is empty"),
    (b"s3://b/k", "cannot read a bytes"),
])
def test_bad_sources_are_one_line_and_invoke_nothing(client, endpoints, source, message):
    with pytest.raises(sma.ValidationError, match=message) as caught:
        client.submit_s3("s3-echo", source)
    assert "\n" not in str(caught.value) and client.records() == []


def test_a_pattern_with_no_match_and_an_oversized_or_empty_object(client, endpoints, monkeypatch):
    put(endpoints, "small/a.csv", b"1234567890ab", "text/csv")
    put(endpoints, "small/empty.csv", b"", "text/csv")
    with pytest.raises(sma.ValidationError, match=r"No object matching '\*.wav' under"):
        client.submit_s3("s3-echo", f"s3://{BUCKET}/small/", pattern="*.wav")
    with pytest.raises(sma.ValidationError, match="empty.csv is empty"):
        client.submit_s3("s3-echo", f"s3://{BUCKET}/small/empty.csv")
    monkeypatch.setattr("sm_async_nb.submission.s3_sources.MAX_S3_PAYLOAD", 10)
    with pytest.raises(sma.ValidationError, match="12 bytes, over SageMaker's 1 GB limit"):
        client.submit_s3("s3-echo", f"s3://{BUCKET}/small/a.csv")


def test_forget_prune_resubmit_and_failures_never_delete_a_user_object(client, endpoints):
    uri = put(endpoints, "precious/keep.csv", b"1\n", "text/csv")
    before = user_objects(endpoints, "precious/")
    failed = client.submit_s3("s3-refuse", uri).wait(timeout=30)
    assert failed.status_counts() == {"FAILED": 1}
    again = failed.resubmit()
    assert again and again[0].input_location == uri  # the same object, not a copy
    again[0].wait(timeout=30)
    lost = client.submit_s3("s3-sync", uri)  # a permanent error from the invoke: the clean-up path
    assert lost.status_counts() == {"ERROR": 1} and "ValidationError" in lost.parts()[0].error
    assert lost.parts()[0].input_location == uri
    client.forget(failed.inference_ids)
    client.prune(0)
    assert user_objects(endpoints, "precious/") == before


def test_an_upload_never_overwrites_or_deletes_a_user_object_at_its_key(stack, endpoints, tmp_path):
    # s3_input_path pointed at the user's own data, and an id that names an existing object.
    kept = put(endpoints, "mine/a.csv", b"precious\n", "text/csv")
    put(endpoints, "mine/c.csv", b"also mine\n", "text/csv")
    before = user_objects(endpoints, "mine/")
    with stack.client(journal_path=tmp_path / "j.sqlite3", s3_input_path=f"s3://{BUCKET}/mine/") as mine:
        # a working endpoint, and one the invoke refuses (the clean-up-after-failure path)
        for endpoint, iid in (("s3-echo", "a"), ("s3-sync", "c")):
            with pytest.raises(sma.SubmissionError, match="already holds an object that is not this input"):
                mine.submit(endpoint, "9,9\n", inference_id=iid, content_type="text/csv")
            assert user_objects(endpoints, "mine/") == before
            assert mine.invocation(iid).status is sma.Status.ERROR
        # the same call again with an id of its own goes through, and a retry of it is recognised as ours
        done = mine.submit("s3-echo", "9,9\n", inference_id="b", content_type="text/csv")
        assert mine.submit("s3-echo", "9,9\n", inference_id="b", content_type="text/csv") == done
        assert done.wait(timeout=30).status is sma.Status.COMPLETED
    got = endpoints.get_object(Bucket=BUCKET, Key="mine/a.csv")["Body"].read()
    assert got == b"precious\n" and kept.endswith("mine/a.csv")


def test_download_names_collisions_and_overwrite(client, endpoints, tmp_path):
    uris = [put(endpoints, "dl/a/same.csv", b"first\n", "text/csv"),
            put(endpoints, "dl/b/same.csv", b"second\n", "text/csv"),
            put(endpoints, "dl/other.csv", b"third\n", "text/csv")]
    batch = client.submit_s3("s3-echo", uris).wait(timeout=30)
    folder = tmp_path / "outputs"
    folder.mkdir()
    (folder / "other.csv").write_text("mine, keep me")
    paths = batch.download(folder)
    assert [p.name for p in paths] == ["same.csv", "same-2.csv", "other-2.csv"]
    assert [p.read_bytes() for p in paths] == [b"first\n", b"second\n", b"third\n"]
    assert (folder / "other.csv").read_text() == "mine, keep me"  # never overwritten unless asked
    again = batch.download(folder, overwrite=True)
    assert [p.name for p in again] == ["same.csv", "same-2.csv", "other.csv"]
    assert (folder / "other.csv").read_bytes() == b"third\n"
    assert not list(folder.glob(".*.part"))


def test_outputs_that_are_not_tables(client, endpoints, tmp_path):
    batch = client.submit_s3("s3-picture", [put(endpoints, "img/cat.jpg", b"JPEGDATA", "image/jpeg")])
    batch.wait(timeout=30)
    with pytest.raises(sma.DecodeError, match=r"This output is image/png, not a table: use \.raw\(\)") as caught:
        batch.result()
    assert "\n" not in str(caught.value) and "download(folder)" in str(caught.value)
    assert batch.to_frame()["status"].tolist() == ["COMPLETED"]
    assert batch[0].raw().startswith(b"\x89PNG")
    [path] = batch.download(tmp_path)
    assert path.name == "cat.png" and path.read_bytes().startswith(b"\x89PNG")


def test_the_magic_sends_a_prefix(stack, endpoints, tmp_path, magic_shell):
    for k in "pq":
        put(endpoints, f"magic/{k}.csv", f"{k}\n".encode(), "text/csv")
    put(endpoints, "magic/skip.txt", b"no", "text/plain")
    with stack.client(journal_path=tmp_path / "j.sqlite3") as client:
        shell = magic_shell(client)
        shell.run_line_magic("invoke_async", f"s3-echo --s3 s3://{BUCKET}/magic/ --pattern *.csv --label mg -o job")
        job = shell.user_ns["job"]
        assert isinstance(job, sma.InvocationBatch) and len(job) == 2 and job.label == "mg"
        with pytest.raises(sma.ValidationError, match="--pattern goes with an --s3 prefix"):
            shell.run_line_magic("invoke_async", "s3-echo job --pattern *.csv")
        with pytest.raises(sma.ValidationError, match="Send one thing at a time"):
            shell.run_line_magic("invoke_async", f"s3-echo job --s3 s3://{BUCKET}/magic/")


def test_a_300_mb_file_streams_with_bounded_memory(stack, endpoints, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(300 * 1024 * 1024)
    script = textwrap.dedent("""
        import json, sys, threading
        from pathlib import Path
        import psutil
        import sm_async_nb as sma
        client = sma.AsyncInferenceClient(sys.argv[2], journal_path=sys.argv[3])
        client.input_prefix()
        process, samples, running = psutil.Process(), [], [True]
        def sample():
            while running[0]:
                samples.append(process.memory_info().rss)
                threading.Event().wait(0.005)
        baseline = process.memory_info().rss
        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        inv = client.submit("s3-echo", Path(sys.argv[1]), content_type="application/octet-stream")
        running[0] = False
        watcher.join()
        peak = max(samples + [process.memory_info().rss])
        print("RESULT " + json.dumps({"grown_mb": (peak - baseline) / 2**20, "id": inv.inference_id,
                                      "size": inv.record.input_size}))
    """)
    env = {**os.environ, **stack.env}
    done = subprocess.run([sys.executable, "-c", script, str(big), f"s3://{stack.input_bucket}/inputs/",
                           str(tmp_path / "j.sqlite3")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result["size"] == 300 * 1024 * 1024
    grown_mb = result["grown_mb"]
    assert grown_mb < 150, f"uploading 300 MB grew the process by {grown_mb:.0f} MB"  # measured ~40 MB
    assert "uploading big.bin" in done.stderr and "(100%)" in done.stderr and "done" in done.stderr
    head = stack.boto3_client("s3").head_object(Bucket=stack.input_bucket, Key=f"inputs/{result['id']}.bin")
    assert head["ContentLength"] == 300 * 1024 * 1024
