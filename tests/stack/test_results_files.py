"""write_results and download never lose a user's file and never leave partial output (SPEC §12):
an existing destination is refused unless overwrite=True, a failure mid-way leaves the previous
content as it was, and every bad destination or output is one line as a package exception."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sm_async_nb as sma
from sm_async_nb.results import destinations
from sm_async_nb.results import writer as results_writer

ROWS = 40  # two windows of parts (results_writer.WINDOW = 32) at one row per request


def rows_model(body: bytes, content_type: str):
    """Echoes a row; the row whose first value is 39 (part 39, in the second window) gets text where
    the others have numbers, as a model that changes its output mid-batch (a column that only later
    parts have, or an integer that turns float, is widened instead: test_decided_once)."""
    text = body.decode()
    if text.startswith("39,"):
        return b"surprise,x\n", "text/csv"
    return body, "text/csv"


def mixed_json(body: bytes, content_type: str):
    return json.dumps({"predictions": [1, "a"] if b"2" in body else [1, 2]}).encode(), "application/json"


@pytest.fixture(scope="module")
def endpoints(stack):
    stack.add_endpoint("rf-rows", model=rows_model, concurrency=8)
    stack.add_endpoint("rf-json", model=mixed_json, concurrency=2)
    return stack


@pytest.fixture
def client(stack, tmp_path):
    with stack.client(journal_path=tmp_path / "journal.sqlite3", max_workers=8) as c:
        yield c


def _csv(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / f"in-{rows}.csv"
    pd.DataFrame({"a": range(rows), "b": ["x"] * rows}).to_csv(path, index=False)
    return path


@pytest.fixture
def good(client, endpoints, tmp_path):
    """A batch of 30 parts whose outputs all fit one schema."""
    return client.submit_dataset("rf-rows", _csv(tmp_path, 30), rows_per_request=1).wait(timeout=120)


@pytest.fixture
def bad(client, endpoints, tmp_path):
    """A batch of 40 parts where part 39 has text in a column the first window had numbers in."""
    return client.submit_dataset("rf-rows", _csv(tmp_path, ROWS), rows_per_request=1).wait(timeout=120)


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(error: BaseException, *words: str) -> None:
    text = str(error)
    assert "\n" not in text and all(w in text for w in words), text


def test_an_existing_file_is_refused_replaced_only_on_request_and_kept_on_failure(good, bad, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "scored.parquet"
    dest.write_bytes(b"the user's own file")
    with pytest.raises(sma.ValidationError) as caught:
        good.write_results(dest)
    _one_line(caught.value, str(dest), "overwrite=True")
    assert _listing(out) == {"scored.parquet": b"the user's own file"}

    # Part 39 (second window) has text where the others have numbers: an error naming it, the old file intact.
    with pytest.raises(sma.DecodeError) as caught:
        bad.write_results(dest, overwrite=True)
    _one_line(caught.value, "part 39", "does not fit the columns of the other parts",
              "column '0' is large_string here but int64")
    assert _listing(out) == {"scored.parquet": b"the user's own file"}  # no temporary file left either

    assert good.write_results(dest, overwrite=True) == str(dest)
    assert pq.read_table(dest).to_pandas()["0"].tolist() == list(range(30))
    assert sorted(p.name for p in out.iterdir()) == ["scored.parquet"]


def test_a_failure_into_a_new_destination_leaves_nothing(bad, tmp_path):
    for dest in (tmp_path / "new" / "deep" / "scored.parquet", tmp_path / "newfolder" / "scored"):
        with pytest.raises(sma.DecodeError):
            bad.write_results(dest)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("new", "."))) == []


def test_a_results_folder_is_replaced_only_on_request_and_the_users_files_stay(good, bad, tmp_path, monkeypatch):
    monkeypatch.setattr(results_writer, "ROWS_PER_FILE", 10)  # 30 rows: three part files
    folder = tmp_path / "scored"
    assert good.write_results(folder) == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == [f"part-0000{i}.parquet" for i in range(3)]
    (folder / "notes.txt").write_text("mine")
    (folder / "part-00007.parquet").write_bytes(b"an old run's part")
    before = _listing(folder)

    with pytest.raises(sma.ValidationError) as caught:
        good.write_results(folder)
    _one_line(caught.value, str(folder), "not empty", "overwrite=True")
    with pytest.raises(sma.DecodeError):
        bad.write_results(folder, overwrite=True)
    assert _listing(folder) == before  # the previous run untouched, no staging folder left

    monkeypatch.setattr(results_writer, "ROWS_PER_FILE", 20)
    good.write_results(folder, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "part-00000.parquet", "part-00001.parquet"]
    assert (folder / "notes.txt").read_text() == "mine"
    back = pq.read_table(folder / "part-00000.parquet").to_pandas()["0"].tolist()
    assert back + pq.read_table(folder / "part-00001.parquet").to_pandas()["0"].tolist() == list(range(30))

    empty = tmp_path / "empty"
    empty.mkdir()  # an existing empty folder needs no overwrite
    good.write_results(empty)
    assert sorted(p.name for p in empty.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]


def test_an_s3_destination_is_refused_replaced_on_request_and_untouched_by_a_failure(good, bad, stack,
                                                                                       monkeypatch):
    s3 = stack.boto3_client("s3")
    s3.create_bucket(Bucket="rf-lake")
    s3.put_object(Bucket="rf-lake", Key="scored/README", Body=b"mine")
    s3.put_object(Bucket="rf-lake", Key="scored/part-00005.parquet", Body=b"old")
    s3.put_object(Bucket="rf-lake", Key="one.parquet", Body=b"old file")

    def objects():
        return {o["Key"]: s3.get_object(Bucket="rf-lake", Key=o["Key"])["Body"].read()
                for o in s3.list_objects_v2(Bucket="rf-lake").get("Contents", [])}

    before = objects()
    for dest in ("s3://rf-lake/scored/", "s3://rf-lake/scored", "s3://rf-lake/one.parquet"):
        with pytest.raises(sma.ValidationError) as caught:
            good.write_results(dest)
        _one_line(caught.value, "overwrite=True")
    for dest in ("s3://rf-lake/scored/", "s3://rf-lake/one.parquet", "s3://rf-lake/fresh/"):
        with pytest.raises(sma.DecodeError):
            bad.write_results(dest, overwrite=True)
    assert objects() == before
    assert s3.list_multipart_uploads(Bucket="rf-lake").get("Uploads", []) == []  # aborted, not left behind

    monkeypatch.setattr(results_writer, "ROWS_PER_FILE", 20)
    good.write_results("s3://rf-lake/scored/", overwrite=True)
    good.write_results("s3://rf-lake/one.parquet", overwrite=True)
    after = objects()
    assert sorted(after) == ["one.parquet", "scored/README", "scored/part-00000.parquet", "scored/part-00001.parquet"]
    assert after["scored/README"] == b"mine"
    assert pq.read_table(pa.BufferReader(after["one.parquet"])).num_rows == 30


def test_bad_destinations_are_one_line(good, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "isdir.parquet").mkdir()
    cases = [
        (tmp_path / "isdir.parquet", "is a folder"),
        (afile / "sub" / "o.parquet", "is a file, not a folder"),
        (afile, "is a file, not a folder"),
        ("s3://", "does not name a valid bucket"),
        (5, "dest must be a path"),
    ]
    for dest, message in cases:
        with pytest.raises(sma.ValidationError) as caught:
            good.write_results(dest)
        _one_line(caught.value, message)
    with pytest.raises(sma.ValidationError, match="overwrite must be True or False"):
        good.write_results(tmp_path / "x.parquet", overwrite="no")
    for dest in ("s3://no-such-bucket-rf/out/", "s3://no-such-bucket-rf/o.parquet"):
        with pytest.raises(sma.AwsError) as caught:
            good.write_results(dest)
        _one_line(caught.value, "no-such-bucket-rf", "does not exist")
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("journal"))
    assert afile.read_text() == "x" and left == ["afile", "in-30.csv", "isdir.parquet"]


def test_an_output_that_does_not_convert_is_a_decode_error(client, endpoints, tmp_path):
    batch = client.submit_dataset("rf-json", _csv(tmp_path, 4), rows_per_request=2, columns=["a"]).wait(timeout=60)
    assert batch.result()["prediction"].tolist() == [1, 2, 1, "a"]
    with pytest.raises(sma.DecodeError) as caught:
        batch.write_results(tmp_path / "js.parquet")
    _one_line(caught.value, "part 1", "cannot be written to Parquet")
    assert not (tmp_path / "js.parquet").exists()


def test_errors_mode_is_checked(good, tmp_path):
    for errors in ("bogus", ["raise"], None):
        with pytest.raises(sma.ValidationError, match="errors must be 'raise' or 'skip'"):
            good.write_results(tmp_path / "x.parquet", errors=errors)
        with pytest.raises(sma.ValidationError):
            good.result(errors=errors)
    assert not (tmp_path / "x.parquet").exists()


def test_download_checks_its_arguments_and_local_targets_before_any_download(good, tmp_path):
    folder = tmp_path / "dl"
    folder.mkdir()
    first = Path(next(iter(good)).input_location).stem + ".csv"  # the name the first output gets
    (folder / first).write_text("mine")
    with pytest.raises(sma.ValidationError, match="overwrite must be True or False"):
        good.download(folder, overwrite="no")
    with pytest.raises(sma.ValidationError, match="folder must be a path"):
        good.download(5)
    assert _listing(folder) == {first: b"mine"}
    (folder / first).unlink()
    (folder / first).mkdir()  # the first part's name is taken by a folder
    with pytest.raises(sma.ValidationError) as caught:
        good.download(folder, overwrite=True)
    _one_line(caught.value, first, "not a file")
    assert _listing(folder) == {}  # nothing downloaded


def test_ctrl_c_mid_way_leaves_the_previous_content(good, bad, stack, tmp_path, monkeypatch):
    folder = tmp_path / "scored"
    good.write_results(folder)
    s3 = stack.boto3_client("s3")
    s3.create_bucket(Bucket="rf-ctrl-c")
    good.write_results("s3://rf-ctrl-c/scored/")
    before_local = _listing(folder)
    before_s3 = [o["Key"] for o in s3.list_objects_v2(Bucket="rf-ctrl-c")["Contents"]]
    monkeypatch.setattr(results_writer, "ROWS_PER_FILE", 10)  # the first window (32 parts) is 4 files
    load = results_writer.load_frame

    def interrupted(ctx, record, **kwargs):
        if record.batch_index == 35:  # in the second window: the first one is written by then
            raise KeyboardInterrupt
        return load(ctx, record, **kwargs)

    monkeypatch.setattr(results_writer, "load_frame", interrupted)
    for dest in (folder, "s3://rf-ctrl-c/scored/", tmp_path / "fresh.parquet"):
        with pytest.raises(KeyboardInterrupt):
            bad.write_results(dest, overwrite=True)
    assert _listing(folder) == before_local and not (tmp_path / "fresh.parquet").exists()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="rf-ctrl-c")["Contents"]] == before_s3
    assert s3.list_multipart_uploads(Bucket="rf-ctrl-c").get("Uploads", []) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_large_s3_object_is_a_multipart_upload_invisible_until_committed(client, stack):
    from sm_async_nb.results import destinations

    s3 = stack.boto3_client("s3")
    s3.create_bucket(Bucket="rf-multipart")
    data = bytes(range(256)) * (18 * 2**12)  # 18 MiB: three parts of 8 MiB
    target = destinations.open_destination(client.ctx.aws, "s3://rf-multipart/big/", overwrite=False)
    stream = target.open("part-00000.parquet")
    for start in range(0, len(data), 2**20):  # as ParquetWriter does: many small writes
        stream.write(data[start:start + 2**20])
    stream.close()
    assert len(stream.parts) == 3 and s3.list_objects_v2(Bucket="rf-multipart").get("KeyCount") == 0
    target.commit()
    assert s3.get_object(Bucket="rf-multipart", Key="big/part-00000.parquet")["Body"].read() == data
    again = destinations.open_destination(client.ctx.aws, "s3://rf-multipart/big/", overwrite=True)
    again.open("part-00000.parquet").write(data)
    again.cancel()
    again.discard()
    assert s3.get_object(Bucket="rf-multipart", Key="big/part-00000.parquet")["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket="rf-multipart").get("Uploads", []) == []


def test_a_failure_while_swapping_parts_in_puts_the_old_ones_back(good, tmp_path, monkeypatch):
    from sm_async_nb.results import destinations

    folder = tmp_path / "scored"
    folder.mkdir()
    (folder / "part-00000.parquet").write_bytes(b"old part")
    (folder / "notes.txt").write_text("mine")
    before = _listing(folder)
    replace, link = os.replace, os.link
    blocked = {".tmp"}  # moving a new part (from the staging folder) into place fails

    def failing(real):
        def move(src, dst):
            if Path(dst).parent == folder and Path(src).parent.name.endswith(tuple(blocked)):
                raise OSError(28, "No space left on device")
            return real(src, dst)
        return move

    monkeypatch.setattr(destinations.os, "replace", failing(replace))
    monkeypatch.setattr(destinations.os, "link", failing(link))  # new parts are linked in (never over a name)
    with pytest.raises(sma.ValidationError) as caught:
        good.write_results(folder, overwrite=True)
    _one_line(caught.value, str(folder), "No space left on device")
    assert _listing(folder) == before  # the old part was put back, the staging folder removed

    blocked.add(".old")  # putting the old part back fails too: it is kept, never deleted
    with pytest.raises(sma.ValidationError):
        good.write_results(folder, overwrite=True)
    kept = _listing(folder)
    assert kept["notes.txt"] == b"mine" and b"old part" in kept.values()


def test_a_failure_while_completing_s3_parts_puts_the_previous_objects_back(good, stack, monkeypatch):
    # Completing a multipart upload replaces its key at once: if the second of three fails, the
    # first one's previous object must come back, and the copies kept aside must go.
    s3 = stack.boto3_client("s3")
    s3.create_bucket(Bucket="rf-complete")
    for n in range(2):
        s3.put_object(Bucket="rf-complete", Key=f"out/part-0000{n}.parquet", Body=f"old {n}".encode())
    monkeypatch.setattr(results_writer, "ROWS_PER_FILE", 10)  # 30 rows: three part files
    calls = []
    real = destinations._Upload.complete

    def flaky(upload, etag):
        calls.append(upload.key)
        if len(calls) == 2:
            raise RuntimeError("the network went away")
        real(upload, etag)

    monkeypatch.setattr(destinations._Upload, "complete", flaky)
    with pytest.raises(RuntimeError, match="network went away"):
        good.write_results("s3://rf-complete/out/", overwrite=True)
    left = {o["Key"]: s3.get_object(Bucket="rf-complete", Key=o["Key"])["Body"].read()
            for o in s3.list_objects_v2(Bucket="rf-complete").get("Contents", [])}
    assert left == {"out/part-00000.parquet": b"old 0", "out/part-00001.parquet": b"old 1"}
